package web

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/internal/links"
	"github.com/microapps/microapps/internal/problem"
	"github.com/microapps/microapps/internal/words"
)

// MeAPI serves the caller's own data as JSON: GET /surveys and GET
// /notifications, to be mounted at /api/v1/me (with or without the prefix
// stripped). It uses the same sign-in as the pages.
func (s *Server) MeAPI() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.GetHead)
	for _, p := range []string{"/surveys", "/notifications"} {
		serve := func(w http.ResponseWriter, r *http.Request) { s.serveMe(w, r, p) }
		// Mounted with its prefix or without, with a trailing slash or not.
		for _, path := range []string{p, p + "/", "/api/v1/me" + p, "/api/v1/me" + p + "/"} {
			r.Get(path, serve)
		}
	}
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeProblem(w, http.StatusNotFound, "not-found", "Not found", "There is no such resource.")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", "GET, HEAD")
		writeProblem(w, http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", "Only GET is supported here.")
	})
	var h http.Handler = r
	if s.sessions != nil {
		h = s.sessions.LoadAndSave(h)
	}
	return refuseBadBytesAPI(h)
}

type meSurvey struct {
	IntegrationID   string     `json:"integrationId"`
	SurveyID        string     `json:"surveyId"`
	DistributionID  string     `json:"distributionId"`
	SurveyName      string     `json:"surveyName"`
	FunctionalGroup string     `json:"functionalGroup"`
	Status          string     `json:"status"`
	SentAt          *time.Time `json:"sentAt"`
	ExpiresAt       *time.Time `json:"expiresAt"`
	RespondLink     *string    `json:"respondLink"`
	DetailsPath     string     `json:"detailsPath"`
}

type meNotification struct {
	ID             int64                      `json:"id"`
	Kind           microapps.NotificationKind `json:"kind"`
	IntegrationID  string                     `json:"integrationId"`
	SurveyID       string                     `json:"surveyId"`
	DistributionID string                     `json:"distributionId"`
	Data           json.RawMessage            `json:"data"`
	CreatedAt      time.Time                  `json:"createdAt"`
	ExpiresAt      time.Time                  `json:"expiresAt"`
	Read           bool                       `json:"read"`
}

// serveMe answers GET p (/surveys or /notifications).
func (s *Server) serveMe(w http.ResponseWriter, r *http.Request, p string) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	email, err := s.UserEmail(r)
	if err != nil {
		writeProblem(w, http.StatusUnauthorized, "unauthorized", "Unauthorized", "Sign in to see your own surveys and notifications.")
		return
	}
	now := s.now()
	read, standby := s.reader(r)
	items, err := s.meItems(r, read, p, email, now)
	// As the pages do: what the read replica failed to serve is read again
	// from the primary.
	if err != nil && standby && r.Context().Err() == nil {
		s.readAgain(err)
		items, err = s.meItems(r, s.opts.Store, p, email, now)
	}
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"items": items})
}

// meItems reads the items of /surveys or /notifications (p) from st.
func (s *Server) meItems(r *http.Request, st Store, p, email string, now time.Time) (any, error) {
	switch p {
	case "/surveys":
		rows, err := st.MyActiveSurveys(r.Context(), email, now)
		if err != nil {
			return nil, err
		}
		out := make([]meSurvey, 0, len(rows))
		for _, m := range rows {
			ms := meSurvey{IntegrationID: m.Integration.ID, SurveyID: m.SurveyID, DistributionID: m.DistributionID,
				SurveyName: m.SurveyName, FunctionalGroup: groupName(m.Integration), Status: m.Status,
				SentAt: m.SentAt, ExpiresAt: m.ExpiresAt, DetailsPath: surveyDetailsPath(m.Integration.ID, m.DistributionID)}
			if u, ok := safeHTTPURL(m.RespondLink); ok {
				ms.RespondLink = &u
			}
			out = append(out, ms)
		}
		return out, nil
	default: // "/notifications"
		feed, err := st.Feed(r.Context(), email, now, 200)
		if err != nil {
			return nil, err
		}
		out := make([]meNotification, 0, len(feed.Items))
		for _, f := range feed.Items {
			data := f.Data
			if f.Kind == microapps.NoticeSurveyStatistics {
				data = words.WithReviewLink(data, links.ReviewDistributionsURL(linksOf(feed, f.IntegrationID), f.SurveyID, f.DistributionID))
			}
			data = safeLinks(data)
			out = append(out, meNotification{ID: f.ID, Kind: f.Kind, IntegrationID: f.IntegrationID, SurveyID: f.SurveyID,
				DistributionID: f.DistributionID, Data: data, CreatedAt: f.CreatedAt, ExpiresAt: f.ExpiresAt, Read: f.ReadAt != nil})
		}
		return out, nil
	}
}

func (s *Server) apiError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Sugar().Errorw("me api", "error", err, "requestId", w.Header().Get("X-Request-Id"), "path", LogPath(r.URL.Path))
	writeProblem(w, http.StatusInternalServerError, "internal", "Internal server error", "Something went wrong on our side.")
}

func writeProblem(w http.ResponseWriter, status int, kind, title, detail string) {
	problem.Write(w, problem.New(status, kind, title, detail))
}

// safeLinks drops from a notification's data every link that is not plain
// http(s), as /surveys does for respond links: the data holds what Qualtrics
// sent, and a client rendering it must never be handed a javascript: URL.
func safeLinks(raw json.RawMessage) json.RawMessage {
	var m map[string]any
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil || m == nil {
		return json.RawMessage("{}")
	}
	changed := false
	for k, v := range m {
		if s, ok := v.(string); ok && strings.HasSuffix(k, "Link") {
			if _, safe := safeHTTPURL(s); !safe {
				m[k] = nil
				changed = true
			}
		}
	}
	if !changed {
		return raw
	}
	out, err := json.Marshal(m)
	if err != nil {
		return json.RawMessage("{}")
	}
	return out
}
