package api

import (
	"time"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/store"
)

// integrationResource is the read shape of an integration. It never holds the
// token or OAuth client secret: only tokenHint.
type integrationResource struct {
	ID                    string                      `json:"id"`
	Name                  string                      `json:"name"`
	FunctionalGroup       string                      `json:"functionalGroup"`
	BaseURL               string                      `json:"baseUrl"`
	Icon                  string                      `json:"icon"`
	AuthMethod            microapps.AuthMethod        `json:"authMethod"`
	TokenHint             string                      `json:"tokenHint"`
	OAuth                 *oauthResource              `json:"oauth,omitempty"`
	RateLimit             rateLimitResource           `json:"rateLimit"`
	RequestTimeoutSeconds int                         `json:"requestTimeoutSeconds"`
	Logging               enabledResource             `json:"logging"`
	Schedule              scheduleResource            `json:"schedule"`
	Events                enabledResource             `json:"events"`
	Veto                  vetoResource                `json:"veto"`
	DeepLinks             map[string]string           `json:"deepLinks"`
	Brand                 brandResource               `json:"brand"`
	Status                microapps.IntegrationStatus `json:"status"`
	StatusMessage         string                      `json:"statusMessage,omitempty"`
	LastSync              *syncRunResource            `json:"lastSync"`
	LastSuccessAt         *time.Time                  `json:"lastSuccessAt"`
	NextFullSyncAt        *time.Time                  `json:"nextFullSyncAt"`
	NextIncrementalSyncAt *time.Time                  `json:"nextIncrementalSyncAt"`
	CreatedAt             time.Time                   `json:"createdAt"`
	UpdatedAt             time.Time                   `json:"updatedAt"`
	Warnings              []string                    `json:"warnings,omitempty"`
}

type oauthResource struct {
	ClientID string `json:"clientId"`
	Scope    string `json:"scope"`
}

type rateLimitResource struct {
	Enabled           bool `json:"enabled"`
	RequestsPerMinute int  `json:"requestsPerMinute"`
}

type enabledResource struct {
	Enabled bool `json:"enabled"`
}

type scheduleResource struct {
	FullSyncEvery        string                `json:"fullSyncEvery"`
	IncrementalSyncEvery string                `json:"incrementalSyncEvery"`
	VerifyEvery          string                `json:"verifyEvery"`
	FullSyncWindow       *microapps.SyncWindow `json:"fullSyncWindow"`
}

type brandResource struct {
	BrandID     string `json:"brandId"`
	Datacenter  string `json:"datacenter"`
	AccountType string `json:"accountType"`
	UserID      string `json:"userId"`
}

type syncRunResource struct {
	ID                 int64                 `json:"id"`
	Kind               microapps.SyncKind    `json:"kind"`
	Status             microapps.RunStatus   `json:"status"`
	Trigger            microapps.SyncTrigger `json:"trigger"`
	QueuedAt           time.Time             `json:"queuedAt"`
	StartedAt          *time.Time            `json:"startedAt"`
	FinishedAt         *time.Time            `json:"finishedAt"`
	DurationMS         *int64                `json:"durationMs"`
	APICalls           int                   `json:"apiCalls"`
	APICallsByEndpoint map[string]int        `json:"apiCallsByEndpoint"`
	Surveys            int                   `json:"surveys"`
	Distributions      int                   `json:"distributions"`
	Recipients         int                   `json:"recipients"`
	Notifications      int                   `json:"notifications"`
	Warnings           []string              `json:"warnings"`
	Changes            []store.Change        `json:"changes"`
	Error              *string               `json:"error"`
	Progress           progressResource      `json:"progress"`
	Vetoed             bool                  `json:"vetoed"`
}

// vetoResource is the integration's sync veto rule.
type vetoResource struct {
	MaxDeletePercent int `json:"maxDeletePercent"`
	MinRows          int `json:"minRows"`
}

// progressResource is where a run stands in its plan of units.
type progressResource struct {
	Phase       string `json:"phase"`
	UnitsTotal  int    `json:"unitsTotal"`
	UnitsDone   int    `json:"unitsDone"`
	UnitsFailed int    `json:"unitsFailed"`
	Jobs        int    `json:"jobs"`
}

func toIntegrationResource(in store.Integration, last *store.SyncRun) integrationResource {
	r := integrationResource{
		ID: in.ID, Name: in.Name, FunctionalGroup: in.FunctionalGroup, BaseURL: in.BaseURL, Icon: in.Icon,
		AuthMethod: in.AuthMethod, TokenHint: in.SecretHint,
		RateLimit:             rateLimitResource{Enabled: in.RateLimitEnabled, RequestsPerMinute: in.RequestsPerMinute},
		RequestTimeoutSeconds: in.RequestTimeoutSeconds,
		Logging:               enabledResource{in.LoggingEnabled},
		Schedule: scheduleResource{FullSyncEvery: microapps.FormatDuration(in.FullSyncEvery),
			IncrementalSyncEvery: microapps.FormatDuration(in.IncrementalSyncEvery),
			VerifyEvery:          microapps.FormatDuration(in.Schedule.Effective().VerifyEvery), FullSyncWindow: in.FullSyncWindow},
		Events:    enabledResource{in.EventsEnabled},
		Veto:      vetoResource{MaxDeletePercent: in.Veto.MaxDeletePercent, MinRows: in.Veto.MinRows},
		DeepLinks: in.DeepLinks,
		Brand: brandResource{BrandID: in.BrandID, Datacenter: in.Datacenter, AccountType: in.AccountType,
			UserID: in.QualtricsUserID},
		Status: in.Status, StatusMessage: in.StatusMessage,
		LastSuccessAt: in.LastSuccessAt, NextFullSyncAt: in.NextFullSyncAt, NextIncrementalSyncAt: in.NextIncrementalSyncAt,
		CreatedAt: in.CreatedAt, UpdatedAt: in.UpdatedAt,
	}
	if in.AuthMethod == microapps.AuthOAuth {
		r.OAuth = &oauthResource{ClientID: in.OAuthClientID, Scope: in.OAuthScope}
	}
	if r.DeepLinks == nil {
		r.DeepLinks = map[string]string{}
	}
	if last != nil {
		lr := toSyncRunResource(*last)
		r.LastSync = &lr
	}
	return r
}

func toSyncRunResource(run store.SyncRun) syncRunResource {
	r := syncRunResource{ID: run.ID, Kind: run.Kind, Status: run.Status, Trigger: run.Trigger, QueuedAt: run.QueuedAt,
		StartedAt: run.StartedAt, FinishedAt: run.FinishedAt, APICalls: run.APICalls, APICallsByEndpoint: run.APICallsByEndpoint,
		Surveys: run.Surveys, Distributions: run.Distributions, Recipients: run.Recipients, Notifications: run.Notifications,
		Warnings: run.Warnings, Changes: run.Changes, Vetoed: run.Vetoed,
		Progress: progressResource{Phase: run.Progress.Phase, UnitsTotal: run.Progress.UnitsTotal, UnitsDone: run.Progress.UnitsDone,
			UnitsFailed: run.Progress.UnitsFailed, Jobs: run.Progress.Jobs}}
	if run.StartedAt != nil && run.FinishedAt != nil {
		ms := run.FinishedAt.Sub(*run.StartedAt).Milliseconds()
		r.DurationMS = &ms
	}
	if run.Error != "" {
		e := run.Error
		r.Error = &e
	}
	if r.Warnings == nil {
		r.Warnings = []string{}
	}
	if r.Changes == nil {
		r.Changes = []store.Change{}
	}
	if r.APICallsByEndpoint == nil {
		r.APICallsByEndpoint = map[string]int{}
	}
	return r
}
