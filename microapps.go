// Package microapps is the domain of the service: the values every other
// package speaks (an integration's status, a sync's kind, a notification's
// kind, …) with their rules (the schedule's defaults and limits, the full
// sync window, the one normalisation of an email address). It imports no
// other package of the module, so any may import it.
//
// The string values are stored in PostgreSQL and written in the admin API's
// JSON: they are part of the external contract and never change.
package microapps

import "slices"

// IntegrationStatus is whether an integration syncs.
type IntegrationStatus string

const (
	IntegrationActive IntegrationStatus = "active" // synced on its schedule
	IntegrationPaused IntegrationStatus = "paused" // kept, not synced (an admin's choice)
	IntegrationError  IntegrationStatus = "error"  // not synced until its credential is replaced
)

// IntegrationStatuses lists the statuses in the order lists show them.
var IntegrationStatuses = []IntegrationStatus{IntegrationActive, IntegrationPaused, IntegrationError}

// Valid reports whether s is one of IntegrationStatuses.
func (s IntegrationStatus) Valid() bool { return slices.Contains(IntegrationStatuses, s) }

// SyncKind is what a sync run reads.
type SyncKind string

const (
	// SyncFull reads every survey listing and what moved since, verifying
	// every live distribution now and then; it decides removals.
	SyncFull SyncKind = "full"
	// SyncIncremental reads what changed since the last run.
	SyncIncremental SyncKind = "incremental"
)

// Valid reports whether k is a kind of sync.
func (k SyncKind) Valid() bool { return k == SyncFull || k == SyncIncremental }

// RunStatus is where a sync run stands.
type RunStatus string

const (
	RunQueued    RunStatus = "queued"
	RunRunning   RunStatus = "running"
	RunSucceeded RunStatus = "succeeded"
	RunFailed    RunStatus = "failed"
)

// Active reports whether the run is still to finish.
func (s RunStatus) Active() bool { return s == RunQueued || s == RunRunning }

// SyncTrigger is why a sync run was queued.
type SyncTrigger string

const (
	TriggerSchedule SyncTrigger = "schedule" // the integration's schedule
	TriggerAdmin    SyncTrigger = "admin"    // a platform admin asked (API or console)
	TriggerCreate   SyncTrigger = "create"   // the first full sync of a new integration
	TriggerToken    SyncTrigger = "token"    // a new credential was stored
)

// AuthMethod is how an integration authenticates to Qualtrics.
type AuthMethod string

const (
	AuthToken AuthMethod = "token" // an API token (X-API-TOKEN)
	AuthOAuth AuthMethod = "oauth" // an OAuth client (client credentials)
)

// WebhookFormat is the body an integration's webhook receives.
type WebhookFormat string

const (
	WebhookJSON  WebhookFormat = "json"  // the notification as JSON
	WebhookSlack WebhookFormat = "slack" // a Slack incoming webhook message
	WebhookTeams WebhookFormat = "teams" // a Teams Adaptive Card
)

// WebhookFormats lists the formats in the order forms show them.
var WebhookFormats = []WebhookFormat{WebhookJSON, WebhookSlack, WebhookTeams}

// Valid reports whether f is one of WebhookFormats.
func (f WebhookFormat) Valid() bool { return slices.Contains(WebhookFormats, f) }

// OrDefault is f, or JSON when none was chosen.
func (f WebhookFormat) OrDefault() WebhookFormat {
	if f == "" {
		return WebhookJSON
	}
	return f
}

// NotificationKind is what a notification tells.
type NotificationKind string

const (
	NoticeNewSurvey        NotificationKind = "new_survey"        // a person was invited to answer a survey
	NoticeSurveyExpiring   NotificationKind = "survey_expiring"   // their invitation expires within 24 hours
	NoticeSurveyStatistics NotificationKind = "survey_statistics" // a Brand Admin's figures, 24 hours before the end
)

// NotificationKinds lists every kind.
var NotificationKinds = []NotificationKind{NoticeNewSurvey, NoticeSurveyExpiring, NoticeSurveyStatistics}

// Channel is a way a notification reaches people.
type Channel string

const (
	ChannelEmail   Channel = "email"
	ChannelWebhook Channel = "webhook"
)

// Channels lists every channel.
var Channels = []Channel{ChannelEmail, ChannelWebhook}

// DeliveryStatus is where a notification's delivery on one channel stands.
type DeliveryStatus string

const (
	DeliveryPending DeliveryStatus = "pending" // to be sent (again)
	DeliverySent    DeliveryStatus = "sent"
	DeliveryFailed  DeliveryStatus = "failed"  // given up after its attempts
	DeliverySkipped DeliveryStatus = "skipped" // not to be sent (unsubscribed, nowhere to send)
)
