// Package manage holds the platform admin's operations on integrations and
// every rule they follow: validation, the /whoami check of a credential,
// switching to the datacenter Qualtrics advises, sealing, the first sync and
// the audit trail. The REST API (/api/v1) and the console (/console) are two
// front ends of this one service; neither repeats a rule.
package manage

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/seal"
	"github.com/microapps/microapps/store"
)

// Store is what the service needs from persistence. *store.Store satisfies it.
type Store interface {
	CreateIntegration(ctx context.Context, in store.Integration, audit store.AuditEvent) (store.Integration, error)
	GetIntegration(ctx context.Context, id string) (store.Integration, error)
	ListIntegrationsPage(ctx context.Context, q store.IntegrationQuery) (store.IntegrationPage, error)
	IntegrationOverview(ctx context.Context, id string, q store.OverviewQuery) (store.IntegrationOverview, error)
	GetNotificationDefaults(ctx context.Context, integrationID string) (store.NotificationDefaults, error)
	Health(ctx context.Context, now time.Time, limit, offset int) (store.HealthView, error)
	SetNotificationDefaults(ctx context.Context, integrationID string, d store.NotificationDefaults, audit store.AuditEvent) error
	UpdateIntegration(ctx context.Context, id string, audit store.AuditEvent, fn func(*store.Integration) error) (store.Integration, error)
	DeleteIntegration(ctx context.Context, id string, audit store.AuditEvent) ([]int64, error)
	ListBrandAdmins(ctx context.Context, integrationID string) ([]string, error)
	PutBrandAdmin(ctx context.Context, integrationID, email string, audit store.AuditEvent) error
	DeleteBrandAdmin(ctx context.Context, integrationID, email string, audit store.AuditEvent) error
	ListSyncRuns(ctx context.Context, integrationID string, limit int) ([]store.SyncRun, error)
	GetSyncRun(ctx context.Context, integrationID string, id int64) (store.SyncRun, error)
	ListRequestLogs(ctx context.Context, integrationID string, since time.Time, limit int) ([]store.RequestLog, error)
	ListAuditEvents(ctx context.Context, beforeID int64, limit int) ([]store.AuditEvent, error)
	ListIntegrationAuditEvents(ctx context.Context, integrationID string, beforeID int64, limit int) ([]store.AuditEvent, error)
	RecordAudit(ctx context.Context, ev store.AuditEvent) error
	SetSyncRunOverrideVeto(ctx context.Context, integrationID string, runID int64) error
	ListDeliveries(ctx context.Context, integrationID string, limit int) ([]store.Delivery, error)
	GetWebhook(ctx context.Context, integrationID string) (store.Webhook, error)
	SetWebhook(ctx context.Context, integrationID string, w store.Webhook, audit store.AuditEvent) error
}

// Syncs starts and cancels sync runs; the syncer implements it.
type Syncs interface {
	// Trigger queues a run unless one is queued or running, which it returns
	// instead (created = false).
	Trigger(ctx context.Context, integrationID string, kind microapps.SyncKind, trigger microapps.SyncTrigger) (run store.SyncRun, created bool, err error)
	// CancelJobs cancels queued or running jobs of a deleted integration.
	CancelJobs(ctx context.Context, jobIDs []int64) error
}

// Options configure the service.
type Options struct {
	Store        Store
	Syncs        Syncs // nil: sync control is not available
	Keyring      *seal.Keyring
	AllowedHosts []string // extra Qualtrics hosts (MICROAPPS_QUALTRICS_ALLOWED_HOSTS)
	// WebhookAllowedHosts may be webhook hosts although they are loopback or
	// private addresses (MICROAPPS_WEBHOOK_ALLOWED_HOSTS).
	WebhookAllowedHosts []string
	Log                 *zap.Logger
	Now                 func() time.Time
	// VerifyTimeout bounds the /whoami check on create and credential change.
	VerifyTimeout time.Duration
	// SealWebhookSecret seals a webhook signing secret for an integration
	// (the notify package owns how).
	SealWebhookSecret func(integrationID, secret string) (keyID string, sealed []byte, err error)
	// TestWebhook sends a sample notification to the integration's webhook
	// (the notify package owns how). Nil: no test delivery.
	TestWebhook func(ctx context.Context, integrationID string, wh store.Webhook) error
	// BeforeDelete runs before an integration is deleted, while its
	// credential is still stored (removing its event subscriptions in
	// Qualtrics). Its error is logged; the delete goes on.
	BeforeDelete func(ctx context.Context, in store.Integration) error
	// AfterDelete runs once the integration is deleted (gone from the API,
	// the console and the pages at once): it queues the background removal of
	// its data, in batches. Its error is logged; the periodic purge queues the
	// removal all the same.
	AfterDelete func(ctx context.Context, integrationID string) error
	// QueueSubscriptions runs after an integration is stored by a write that
	// named events.enabled (a creation with events on, a settings change): it
	// queues the registering or removing of its event subscriptions in
	// Qualtrics, so they need not wait for the next sync. Its error is logged.
	QueueSubscriptions func(ctx context.Context, integrationID string, enabled bool) error
}

// Service carries out the platform admin's operations. Every method that
// changes something takes the actor recorded in the audit trail: a hash of
// the admin token for the REST API, the admin's email for the console.
type Service struct {
	o Options
}

// New returns the service.
func New(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.VerifyTimeout == 0 {
		o.VerifyTimeout = 30 * time.Second
	}
	return &Service{o: o}
}

// Kind classifies an Error; each front end maps it to its own answer.
type Kind int

const (
	Invalid     Kind = iota + 1 // some fields are not valid (Fields says which)
	NotFound                    // the integration (or sync run) does not exist
	Conflict                    // the request cannot be done in the current state
	Rejected                    // Qualtrics rejected the credential
	Unreachable                 // Qualtrics could not be reached to check it
	Unavailable                 // this replica cannot do it (no sync control)
)

// Error is a refusal the caller can show. Detail never holds a secret.
type Error struct {
	Kind   Kind
	Detail string
	// Field is the field a Qualtrics verdict concerns (Rejected, Unreachable).
	Field  string
	Fields []microapps.FieldError // Invalid
}

func (e *Error) Error() string {
	if e.Kind == Invalid {
		parts := make([]string, 0, len(e.Fields))
		for _, f := range e.Fields {
			parts = append(parts, f.Field+" "+f.Message)
		}
		return "invalid: " + strings.Join(parts, "; ")
	}
	return e.Detail
}

func invalid(fields ...microapps.FieldError) *Error { return &Error{Kind: Invalid, Fields: fields} }

func rejected(field, detail string) *Error {
	return &Error{Kind: Rejected, Field: field, Detail: detail}
}

func unreachable(field, detail string) *Error {
	return &Error{Kind: Unreachable, Field: field, Detail: detail}
}

func notFound(what string) *Error { return &Error{Kind: NotFound, Detail: what + " does not exist."} }

// Warning kinds, for front ends that word them in their own language.
const (
	WarnNotBrandAdmin = "not-brand-admin" // the credential is not a Brand Admin's
	WarnHostSwitched  = "host-switched"   // baseUrl was switched to the advised datacenter
)

// Warning is something Qualtrics said that did not stop the change.
type Warning struct {
	Field   string
	Kind    string
	Message string
}

// Get returns one integration (a NotFound *Error when there is none).
func (s *Service) Get(ctx context.Context, id string) (store.Integration, error) {
	in, err := s.o.Store.GetIntegration(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return in, notFound("This integration")
	}
	return in, err
}

// Page returns one page of integrations with their newest run (two
// statements whatever the fleet).
func (s *Service) Page(ctx context.Context, q store.IntegrationQuery) (store.IntegrationPage, error) {
	return s.o.Store.ListIntegrationsPage(ctx, q)
}

// Overview is what an integration's console page shows.
type Overview struct {
	store.IntegrationOverview
	WebhookView WebhookView
}

// Overview reads an integration's console page in one round trip: q bounds
// each list; the request logs are the last 24 hours'.
func (s *Service) Overview(ctx context.Context, id string, q store.OverviewQuery) (Overview, error) {
	q.LogsSince = s.o.Now().Add(-24 * time.Hour)
	o, err := s.o.Store.IntegrationOverview(ctx, id, q)
	if errors.Is(err, store.ErrNotFound) {
		return Overview{}, notFound("This integration")
	}
	if err != nil {
		return Overview{}, err
	}
	return Overview{IntegrationOverview: o, WebhookView: webhookView(o.Webhook)}, nil
}

// Health reads a page of the fleet's health, failing integrations first,
// with the outbox, River's queues and the brands' budgets.
func (s *Service) Health(ctx context.Context, limit, offset int) (store.HealthView, error) {
	return s.o.Store.Health(ctx, s.o.Now(), limit, offset)
}

// LastRun returns the integration's newest sync run, if any.
func (s *Service) LastRun(ctx context.Context, id string) (*store.SyncRun, error) {
	runs, err := s.o.Store.ListSyncRuns(ctx, id, 1)
	if err != nil || len(runs) == 0 {
		return nil, err
	}
	return &runs[0], nil
}

// Created is the outcome of Create.
type Created struct {
	Integration store.Integration
	FirstRun    *store.SyncRun // the first full sync, queued at once (nil when paused or it could not be queued)
	Warnings    []Warning
}

// Create validates w, checks its credential with /whoami (switching to the
// datacenter Qualtrics advises), seals it, stores the integration with its
// audit event and queues its first full sync.
func (s *Service) Create(ctx context.Context, actor string, w IntegrationPatch) (Created, error) {
	if st := w.Status; st != nil && *st != microapps.IntegrationActive && *st != microapps.IntegrationPaused {
		return Created{}, invalid(microapps.FieldError{Field: "status", Message: `must be "active" or "paused"`})
	}
	in := store.Integration{Icon: "clipboard", RequestsPerMinute: 1500, RequestTimeoutSeconds: 120,
		Schedule: microapps.DefaultSchedule, Status: microapps.IntegrationActive, DeepLinks: map[string]string{}}
	cred, errs := s.apply(&w, &in, true)
	if len(errs) > 0 {
		return Created{}, invalid(errs...)
	}
	v, err := s.verify(ctx, in.BaseURL, *cred, time.Duration(in.RequestTimeoutSeconds)*time.Second)
	if err != nil {
		return Created{}, err
	}
	applyIdentity(&in, v)
	in.ID = uuid.NewString()
	if err := s.seal(in.ID, *cred, &in); err != nil {
		return Created{}, err
	}
	now := s.o.Now()
	in.NextFullSyncAt = &now
	created, err := s.o.Store.CreateIntegration(ctx, in, audit(actor, "integration.create",
		map[string]any{"name": in.Name, "baseUrl": in.BaseURL, "authMethod": in.AuthMethod}))
	if err != nil {
		return Created{}, err
	}
	out := Created{Integration: created, Warnings: v.warnings}
	out.FirstRun = s.afterCreate(ctx, &w, created)
	return out, nil
}

// afterCreate runs once a new integration is stored: its event
// subscriptions are queued when it has events on, and its first full sync
// starts. Hook point for work that follows a new integration.
func (s *Service) afterCreate(ctx context.Context, w *IntegrationPatch, created store.Integration) *store.SyncRun {
	s.queueSubscriptions(ctx, w, created, true)
	if created.Status != microapps.IntegrationActive || s.o.Syncs == nil {
		return nil
	}
	// The first full sync starts at once rather than at the next scheduler tick.
	run, _, err := s.o.Syncs.Trigger(ctx, created.ID, microapps.SyncFull, microapps.TriggerCreate)
	if err != nil {
		s.o.Log.Warn("manage: could not queue the first sync; the scheduler will", zap.String("integrationId", created.ID), zap.Error(err))
		return nil
	}
	return &run
}

// afterUpdate runs once a change w to an integration is stored (w is nil for
// a credential change alone): its event subscriptions follow events.enabled.
// Hook point for work that follows a settings change.
func (s *Service) afterUpdate(ctx context.Context, w *IntegrationPatch, before, after store.Integration) {
	if w != nil {
		s.queueSubscriptions(ctx, w, after, false)
	}
}

// queueSubscriptions asks, once an integration is stored, for its event
// subscriptions to follow a write that named events.enabled: registered at
// once when on, removed at once when off (see Options.QueueSubscriptions).
// A creation with events off has nothing to remove. A failure is logged: the
// next sync brings the subscriptions in step anyway.
func (s *Service) queueSubscriptions(ctx context.Context, w *IntegrationPatch, in store.Integration, creating bool) {
	if s.o.QueueSubscriptions == nil || w.EventsEnabled == nil || (creating && !in.EventsEnabled) {
		return
	}
	if err := s.o.QueueSubscriptions(ctx, in.ID, in.EventsEnabled); err != nil {
		s.o.Log.Warn("manage: could not queue the event subscriptions; the next sync will bring them in step",
			zap.String("integrationId", in.ID), zap.Error(err))
	}
}

// Update applies the fields w names. A new credential or base URL is checked
// with /whoami first, outside the row lock; nothing is written if any check
// fails. A base URL on another host name needs the credential in the same
// write (an Invalid error naming its field otherwise); a new port on the same
// host is checked with the stored one.
func (s *Service) Update(ctx context.Context, actor, id string, w IntegrationPatch) (store.Integration, []Warning, error) {
	current, err := s.Get(ctx, id)
	if err != nil {
		return current, nil, err
	}
	// Validate and verify against a copy first: the Qualtrics check must not
	// run inside the row lock, and nothing may be written if it fails.
	draft := current
	draft.DeepLinks = cloneMap(current.DeepLinks)
	cred, errs := s.apply(&w, &draft, false)
	if len(errs) > 0 {
		return current, nil, invalid(errs...)
	}
	if cred == nil && baseURLHost(draft.BaseURL) != baseURLHost(current.BaseURL) {
		// The stored credential was given for the current host: it is sent
		// to another host only when the same write gives it again.
		field := "token"
		if current.AuthMethod == microapps.AuthOAuth {
			field = "oauth.clientSecret"
		}
		return current, nil, invalid(microapps.FieldError{Field: field, Message: "is required when baseUrl moves to another host " +
			"(" + baseURLHost(draft.BaseURL) + "): the stored credential is only sent to the host it was given for"})
	}
	var v *verified
	if cred != nil || draft.BaseURL != current.BaseURL {
		c := cred
		if c == nil {
			// A new base URL is checked with the stored credential.
			stored, err := s.storedCredential(current)
			if err != nil {
				return current, nil, err
			}
			c = &stored
		}
		vv, err := s.verify(ctx, draft.BaseURL, *c, time.Duration(draft.RequestTimeoutSeconds)*time.Second)
		if err != nil {
			return current, nil, err
		}
		v = &vv
	}
	updated, err := s.o.Store.UpdateIntegration(ctx, current.ID, audit(actor, "integration.update", map[string]any{"fields": w.Changed()}),
		func(in *store.Integration) error {
			cred2, errs := s.apply(&w, in, false)
			if len(errs) > 0 {
				return invalid(errs...)
			}
			if v != nil {
				applyIdentity(in, *v)
			}
			if cred2 != nil {
				return s.storeCredential(in, *cred2)
			}
			return nil
		})
	if errors.Is(err, store.ErrNotFound) {
		return current, nil, notFound("This integration")
	}
	if err != nil {
		return current, nil, err
	}
	s.afterUpdate(ctx, &w, current, updated)
	var warnings []Warning
	if v != nil {
		warnings = v.warnings
	}
	return updated, warnings, nil
}

// baseURLHost is the host name of a (normalised) base URL, without its
// port: a change of port or path on one host keeps the credential's host.
func baseURLHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return strings.ToLower(u.Hostname())
}

// PutToken replaces the integration's credential with an API token, checked
// with /whoami. An integration in error resumes.
func (s *Service) PutToken(ctx context.Context, actor, id string, token *string) ([]Warning, error) {
	if token == nil {
		return nil, invalid(microapps.FieldError{Field: "token", Message: "is required"})
	}
	if msg := checkSecret(*token); msg != "" {
		return nil, invalid(microapps.FieldError{Field: "token", Message: msg})
	}
	current, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	cred := credentialChange{method: microapps.AuthToken, secret: *token}
	v, err := s.verify(ctx, current.BaseURL, cred, time.Duration(current.RequestTimeoutSeconds)*time.Second)
	if err != nil {
		return nil, err
	}
	updated, err := s.o.Store.UpdateIntegration(ctx, current.ID, audit(actor, "integration.token", map[string]any{"tokenHint": cred.hint()}),
		func(in *store.Integration) error {
			applyIdentity(in, v)
			return s.storeCredential(in, cred)
		})
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("This integration")
	}
	if err != nil {
		return nil, err
	}
	s.afterUpdate(ctx, nil, current, updated)
	return v.warnings, nil
}

// Delete removes the integration at once (store.DeleteIntegration marks it
// deleted) and cancels its jobs; AfterDelete queues the removal of its data.
func (s *Service) Delete(ctx context.Context, actor, id string) error {
	in, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if s.o.BeforeDelete != nil {
		if err := s.o.BeforeDelete(ctx, in); err != nil {
			s.o.Log.Warn("manage: clean-up before deleting an integration failed", zap.String("integrationId", in.ID), zap.Error(err))
		}
	}
	jobIDs, err := s.o.Store.DeleteIntegration(ctx, in.ID, audit(actor, "integration.delete", map[string]any{"name": in.Name}))
	if errors.Is(err, store.ErrNotFound) {
		return notFound("This integration")
	}
	if err != nil {
		return err
	}
	if len(jobIDs) > 0 && s.o.Syncs != nil {
		if err := s.o.Syncs.CancelJobs(ctx, jobIDs); err != nil {
			// The jobs find the integration gone and end on their own.
			s.o.Log.Warn("manage: could not cancel jobs of a deleted integration", zap.String("integrationId", in.ID), zap.Error(err))
		}
	}
	if s.o.AfterDelete != nil {
		if err := s.o.AfterDelete(ctx, in.ID); err != nil {
			s.o.Log.Warn("manage: could not queue the removal of a deleted integration's data", zap.String("integrationId", in.ID), zap.Error(err))
		}
	}
	return nil
}

// TriggerSync queues a sync of kind unless one is queued or running, which
// it returns instead (created false).
func (s *Service) TriggerSync(ctx context.Context, actor, id string, kind microapps.SyncKind) (run store.SyncRun, created bool, err error) {
	return s.TriggerSyncOverride(ctx, actor, id, kind, false)
}

// TriggerSyncOverride is TriggerSync; with overrideVeto (full syncs only)
// the run removes what it finds gone whatever the veto rule says. A full run
// already queued or running is given the override instead of a new run.
func (s *Service) TriggerSyncOverride(ctx context.Context, actor, id string, kind microapps.SyncKind, overrideVeto bool) (run store.SyncRun, created bool, err error) {
	if !kind.Valid() {
		return run, false, invalid(microapps.FieldError{Field: "kind", Message: `must be "full" or "incremental"`})
	}
	if overrideVeto && kind != microapps.SyncFull {
		return run, false, invalid(microapps.FieldError{Field: "overrideVeto", Message: `applies to a full sync only (kind "full")`})
	}
	in, err := s.Get(ctx, id)
	if err != nil {
		return run, false, err
	}
	if kind == microapps.SyncIncremental && in.FirstFullSyncAt == nil {
		return run, false, &Error{Kind: Conflict, Field: "kind",
			Detail: "An incremental sync needs a successful full sync first; ask for a full sync."}
	}
	if s.o.Syncs == nil {
		return run, false, &Error{Kind: Unavailable, Detail: "Sync control is not available on this replica."}
	}
	run, created, err = s.o.Syncs.Trigger(ctx, in.ID, kind, microapps.TriggerAdmin)
	if err != nil {
		return run, false, err
	}
	if overrideVeto {
		// The run just queued, or the one queued or running already: the
		// override applies to it, not dropped.
		if run.Kind != microapps.SyncFull {
			return run, false, &Error{Kind: Conflict, Field: "overrideVeto",
				Detail: "An incremental sync is queued or running; ask again for a full sync with overrideVeto once it ends."}
		}
		if err := s.o.Store.SetSyncRunOverrideVeto(ctx, in.ID, run.ID); err != nil {
			return run, false, err
		}
		run.OverrideVeto = true
		ev := audit(actor, "sync.override_veto", map[string]any{"syncId": run.ID})
		ev.IntegrationID = in.ID
		if err := s.o.Store.RecordAudit(ctx, ev); err != nil {
			s.o.Log.Warn("manage: audit", zap.Error(err))
		}
	}
	if created {
		ev := audit(actor, "sync.trigger", map[string]any{"kind": kind, "syncId": run.ID, "overrideVeto": overrideVeto})
		ev.IntegrationID = in.ID
		if err := s.o.Store.RecordAudit(ctx, ev); err != nil {
			s.o.Log.Warn("manage: audit", zap.Error(err))
		}
	}
	return run, created, nil
}

// SyncRuns returns the integration's newest runs, newest first.
func (s *Service) SyncRuns(ctx context.Context, id string, limit int) ([]store.SyncRun, error) {
	if _, err := s.Get(ctx, id); err != nil {
		return nil, err
	}
	return s.o.Store.ListSyncRuns(ctx, id, limit)
}

// SyncRun returns one run of the integration.
func (s *Service) SyncRun(ctx context.Context, id string, runID int64) (store.SyncRun, error) {
	if _, err := s.Get(ctx, id); err != nil {
		return store.SyncRun{}, err
	}
	run, err := s.o.Store.GetSyncRun(ctx, id, runID)
	if errors.Is(err, store.ErrNotFound) {
		return run, notFound("This sync run")
	}
	return run, err
}

// RequestLogs returns the integration's Qualtrics calls of the last 24 hours, newest first.
func (s *Service) RequestLogs(ctx context.Context, id string, limit int) ([]store.RequestLog, error) {
	if _, err := s.Get(ctx, id); err != nil {
		return nil, err
	}
	return s.o.Store.ListRequestLogs(ctx, id, s.o.Now().Add(-24*time.Hour), limit)
}

// BrandAdmins lists the integration's Brand Admins.
func (s *Service) BrandAdmins(ctx context.Context, id string) ([]string, error) {
	if _, err := s.Get(ctx, id); err != nil {
		return nil, err
	}
	return s.o.Store.ListBrandAdmins(ctx, id)
}

// PutBrandAdmin makes rawEmail (normalised) a Brand Admin of the integration.
func (s *Service) PutBrandAdmin(ctx context.Context, actor, id, rawEmail string) (string, error) {
	return s.brandAdminChange(ctx, actor, id, rawEmail, "brand_admin.add", s.o.Store.PutBrandAdmin)
}

// DeleteBrandAdmin removes rawEmail (normalised) from the integration's Brand Admins.
func (s *Service) DeleteBrandAdmin(ctx context.Context, actor, id, rawEmail string) (string, error) {
	return s.brandAdminChange(ctx, actor, id, rawEmail, "brand_admin.remove", s.o.Store.DeleteBrandAdmin)
}

func (s *Service) brandAdminChange(ctx context.Context, actor, id, rawEmail, action string,
	change func(ctx context.Context, integrationID, email string, audit store.AuditEvent) error) (string, error) {
	in, err := s.Get(ctx, id)
	if err != nil {
		return "", err
	}
	email, ok := microapps.ParseAddress(rawEmail)
	if !ok {
		return "", invalid(microapps.FieldError{Field: "email", Message: "must be an email address such as ana@example.com"})
	}
	return email, change(ctx, in.ID, email, audit(actor, action, map[string]any{"email": email}))
}

// Deliveries lists the integration's notification deliveries, newest first.
func (s *Service) Deliveries(ctx context.Context, id string, limit int) ([]store.Delivery, error) {
	if _, err := s.Get(ctx, id); err != nil {
		return nil, err
	}
	return s.o.Store.ListDeliveries(ctx, id, limit)
}

// Webhook returns the integration's webhook as it may be shown: the URL's
// path and query hidden, the secret only as "signed".
func (s *Service) Webhook(ctx context.Context, id string) (WebhookView, error) {
	if _, err := s.Get(ctx, id); err != nil {
		return WebhookView{}, err
	}
	wh, err := s.o.Store.GetWebhook(ctx, id)
	if err != nil {
		return WebhookView{}, err
	}
	return webhookView(wh), nil
}

func webhookView(wh store.Webhook) WebhookView {
	return WebhookView{URL: WebhookURLShown(wh.URL), Format: wh.Format.OrDefault(), Signed: len(wh.SecretSealed) > 0, Set: wh.URL != ""}
}

// WebhookView is a webhook as it may be shown.
type WebhookView struct {
	URL    string
	Format microapps.WebhookFormat
	Signed bool
	Set    bool
}

// WebhookWrite is the body of PUT /webhook.
type WebhookWrite struct {
	URL    *string `json:"url"`
	Secret *string `json:"secret"`
	Format *string `json:"format"`
}

// SetWebhook validates and stores the integration's webhook.
func (s *Service) SetWebhook(ctx context.Context, actor, id string, body WebhookWrite) error {
	var errs []microapps.FieldError
	wh := store.Webhook{Format: microapps.WebhookJSON}
	if body.URL == nil {
		errs = append(errs, microapps.FieldError{Field: "url", Message: "is required"})
	} else if u, err := url.Parse(*body.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(*body.URL) > 2000 {
		errs = append(errs, microapps.FieldError{Field: "url", Message: "must be an absolute http(s) URL without user info, at most 2000 characters"})
	} else if !s.webhookHostAllowed(u) {
		errs = append(errs, microapps.FieldError{Field: "url", Message: "must not point at a loopback, private, link-local or other internal address"})
	} else if u.Scheme == "http" && !s.webhookHostListed(u) {
		errs = append(errs, microapps.FieldError{Field: "url", Message: "must use https (plain http is allowed only for the hosts in MICROAPPS_WEBHOOK_ALLOWED_HOSTS)"})
	} else {
		wh.URL = *body.URL
	}
	if body.Format != nil {
		switch f := microapps.WebhookFormat(*body.Format); {
		case f.Valid():
			wh.Format = f
		default:
			errs = append(errs, microapps.FieldError{Field: "format", Message: `must be "json", "slack" or "teams"`})
		}
	}
	if body.Secret != nil {
		if msg := checkSecret(*body.Secret); msg != "" {
			errs = append(errs, microapps.FieldError{Field: "secret", Message: msg})
		} else if len(*body.Secret) < 16 {
			errs = append(errs, microapps.FieldError{Field: "secret", Message: "must be at least 16 characters"})
		}
	}
	if len(errs) > 0 {
		return invalid(errs...)
	}
	in, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if body.Secret != nil {
		if s.o.SealWebhookSecret == nil {
			return errors.New("manage: no webhook secret sealer configured")
		}
		if wh.SecretKeyID, wh.SecretSealed, err = s.o.SealWebhookSecret(in.ID, *body.Secret); err != nil {
			return err
		}
	}
	return s.o.Store.SetWebhook(ctx, in.ID, wh, audit(actor, "webhook.set",
		map[string]any{"url": WebhookURLShown(wh.URL), "format": wh.Format, "signed": body.Secret != nil}))
}

// webhookHostAllowed refuses the destinations a webhook must never reach that
// can be told from the URL alone: an IP literal that is not public, a
// localhost name, a numeric spelling of an address (2130706433, 0177.0.0.1).
// A name that resolves to an internal address is refused when the delivery
// dials (notify.WebhookClient); hosts in WebhookAllowedHosts pass both.
func (s *Service) webhookHostAllowed(u *url.URL) bool {
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "" {
		return false
	}
	if s.webhookHostListed(u) {
		return true
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return qualtrics.PublicAddress(ip)
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return false
	}
	// A real host name ends in a top-level label that starts with a letter;
	// one that does not (2130706433, 0x7f.1) is a resolver's alternative
	// spelling of an IPv4 address.
	last := host[strings.LastIndex(host, ".")+1:]
	return last != "" && last[0] >= 'a' && last[0] <= 'z'
}

// webhookHostListed says whether u's host is one of WebhookAllowedHosts,
// the only hosts a webhook may reach over plain http: anywhere else a
// notification (names, emails, links) and the receiver's token in the URL
// would cross the network in clear.
func (s *Service) webhookHostListed(u *url.URL) bool {
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	for _, a := range s.o.WebhookAllowedHosts {
		if host != "" && strings.EqualFold(strings.TrimSpace(a), host) {
			return true
		}
	}
	return false
}

// DeleteWebhook removes the integration's webhook.
func (s *Service) DeleteWebhook(ctx context.Context, actor, id string) error {
	in, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	return s.o.Store.SetWebhook(ctx, in.ID, store.Webhook{}, audit(actor, "webhook.delete", nil))
}

// TestWebhook sends a sample notification to the integration's webhook now
// and audits it. Its error says why the receiver refused it.
func (s *Service) TestWebhook(ctx context.Context, actor, id string) error {
	in, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if s.o.TestWebhook == nil {
		return &Error{Kind: Unavailable, Detail: "Test deliveries are not available on this replica."}
	}
	wh, err := s.o.Store.GetWebhook(ctx, in.ID)
	if err != nil {
		return err
	}
	if wh.URL == "" {
		return &Error{Kind: Conflict, Field: "url", Detail: "This integration has no webhook to test."}
	}
	sendErr := s.o.TestWebhook(ctx, in.ID, wh)
	details := map[string]any{"url": WebhookURLShown(wh.URL), "ok": sendErr == nil}
	ev := audit(actor, "webhook.test", details)
	ev.IntegrationID = in.ID
	if err := s.o.Store.RecordAudit(ctx, ev); err != nil {
		s.o.Log.Warn("manage: audit", zap.Error(err))
	}
	if sendErr != nil {
		return &Error{Kind: Unreachable, Field: "url", Detail: sendErr.Error()}
	}
	return nil
}

// AuditEvents returns the audit trail, newest first, before the id given
// (0 = from the newest).
func (s *Service) AuditEvents(ctx context.Context, beforeID int64, limit int) ([]store.AuditEvent, error) {
	return s.o.Store.ListAuditEvents(ctx, beforeID, limit)
}

// IntegrationAuditEvents is AuditEvents for one integration.
func (s *Service) IntegrationAuditEvents(ctx context.Context, id string, beforeID int64, limit int) ([]store.AuditEvent, error) {
	if _, err := s.Get(ctx, id); err != nil {
		return nil, err
	}
	return s.o.Store.ListIntegrationAuditEvents(ctx, id, beforeID, limit)
}

func audit(actor, action string, details map[string]any) store.AuditEvent {
	return store.AuditEvent{Actor: actor, Action: action, Details: details}
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// WebhookURLShown hides the path and query of a webhook URL: Slack and Teams
// URLs carry their secret there.
func WebhookURLShown(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		return ""
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return u.Scheme + "://" + u.Host + "/…"
	}
	return u.Scheme + "://" + u.Host + "/"
}

// Icons are the icons bundled with the pages, in the order a picker shows them.
func Icons() []string {
	out := make([]string, 0, len(icons))
	for k := range icons {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
