package api

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/manage"
)

// integrationBody is the body of POST and PATCH /integrations. Pointers
// tell "absent" from "zero", so PATCH changes only what it names.
type integrationBody struct {
	Name                  *string           `json:"name"`
	FunctionalGroup       *string           `json:"functionalGroup"`
	BaseURL               *string           `json:"baseUrl"`
	Token                 *string           `json:"token"`
	OAuth                 *oauthBody        `json:"oauth"`
	Icon                  *string           `json:"icon"`
	RateLimit             *rateLimitBody    `json:"rateLimit"`
	RequestTimeoutSeconds *int              `json:"requestTimeoutSeconds"`
	Logging               *enabledBody      `json:"logging"`
	Schedule              *scheduleBody     `json:"schedule"`
	Events                *enabledBody      `json:"events"`
	Veto                  *vetoBody         `json:"veto"`
	DeepLinks             map[string]string `json:"deepLinks"`
	Status                *string           `json:"status"`
}

type oauthBody struct {
	ClientID     *string `json:"clientId"`
	ClientSecret *string `json:"clientSecret"`
	Scope        *string `json:"scope"`
}

type rateLimitBody struct {
	Enabled           *bool `json:"enabled"`
	RequestsPerMinute *int  `json:"requestsPerMinute"`
}

type enabledBody struct {
	Enabled *bool `json:"enabled"`
}

type scheduleBody struct {
	FullSyncEvery        *string         `json:"fullSyncEvery"`
	IncrementalSyncEvery *string         `json:"incrementalSyncEvery"`
	VerifyEvery          *string         `json:"verifyEvery"`
	FullSyncWindow       json.RawMessage `json:"fullSyncWindow"` // null clears it
}

type vetoBody struct {
	MaxDeletePercent *int `json:"maxDeletePercent"`
	MinRows          *int `json:"minRows"`
}

// patch maps the body onto the service's change; what cannot be read (a
// period that is no duration, a window of the wrong shape) goes with it as
// input errors, reported with the service's own.
func (b *integrationBody) patch() manage.IntegrationPatch {
	p := manage.IntegrationPatch{Name: b.Name, FunctionalGroup: b.FunctionalGroup, BaseURL: b.BaseURL, Icon: b.Icon,
		RequestTimeoutSeconds: b.RequestTimeoutSeconds, DeepLinks: b.DeepLinks}
	if b.Token != nil || b.OAuth != nil {
		p.Credential = &manage.Credential{Token: b.Token}
		if o := b.OAuth; o != nil {
			p.Credential.OAuth = &manage.OAuthClient{ClientID: o.ClientID, ClientSecret: o.ClientSecret, Scope: o.Scope}
		}
	}
	if r := b.RateLimit; r != nil {
		p.RateLimitEnabled, p.RequestsPerMinute = r.Enabled, r.RequestsPerMinute
	}
	if b.Logging != nil {
		p.LoggingEnabled = b.Logging.Enabled
	}
	if b.Events != nil {
		p.EventsEnabled = b.Events.Enabled
	}
	if v := b.Veto; v != nil {
		p.VetoMaxDeletePercent, p.VetoMinRows = v.MaxDeletePercent, v.MinRows
	}
	if b.Status != nil {
		st := microapps.IntegrationStatus(*b.Status)
		p.Status = &st
	}
	if s := b.Schedule; s != nil {
		for _, e := range []struct {
			field string
			raw   *string
			dst   **time.Duration
		}{{"fullSyncEvery", s.FullSyncEvery, &p.FullSyncEvery}, {"incrementalSyncEvery", s.IncrementalSyncEvery, &p.IncrementalSyncEvery},
			{"verifyEvery", s.VerifyEvery, &p.VerifyEvery}} {
			if e.raw == nil {
				continue
			}
			if d, ferr := microapps.ParseEvery(e.field, *e.raw); ferr != nil {
				p.InputErrors = append(p.InputErrors, *ferr)
			} else {
				*e.dst = &d
			}
		}
		if len(s.FullSyncWindow) > 0 {
			p.SetFullSyncWindow = true
			if !bytes.Equal(bytes.TrimSpace(s.FullSyncWindow), []byte("null")) {
				var w microapps.SyncWindow
				dec := json.NewDecoder(bytes.NewReader(s.FullSyncWindow))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&w); err != nil {
					p.SetFullSyncWindow = false
					p.InputErrors = append(p.InputErrors, microapps.FieldError{Field: "schedule.fullSyncWindow",
						Message: `must be {"start": "HH:MM", "end": "HH:MM", "timeZone": "Area/City"} or null`})
				} else {
					p.FullSyncWindow = &w
				}
			}
		}
	}
	return p
}
