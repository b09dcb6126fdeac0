package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/microapps/microapps/internal/problem"
	"github.com/microapps/microapps/store"
)

// Topics the service subscribes to and understands.
const (
	topicCompleted   = "surveyengine.completedResponse."
	topicStarted     = "surveyengine.startedRecipientSession."
	topicPartial     = "surveyengine.partialResponse."
	topicActivate    = "controlpanel.activateSurvey"
	topicDeactivate  = "controlpanel.deactivateSurvey"
	noResponsePrefix = "none:"
)

// MaxEventAge is how old (by CompletedDate) a callback may be. Qualtrics
// retries for far less; anything older is a replay.
const MaxEventAge = 48 * time.Hour

// Receiver returns the handler of POST /hooks/qualtrics/{integrationId}.
// Mount it at the application's root without stripping the path.
func (s *Service) Receiver() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hooks/qualtrics/{integrationId}", s.receive)
	return mux
}

func writeProblem(w http.ResponseWriter, status int, kind, title, detail string) {
	problem.Write(w, problem.New(status, kind, title, detail))
}

func writeStatus(w http.ResponseWriter, status int, outcome string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": outcome})
}

// receive verifies, deduplicates and stores one callback with its apply job.
// Nothing of the body (MSG, HMAC) is ever logged: an unauthenticated body is
// attacker-controlled, and an authenticated one is the brand's data.
func (s *Service) receive(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	integrationID := strings.ToLower(r.PathValue("integrationId"))
	log := s.log.With(zap.String("integrationId", truncate(integrationID, 40)))
	unauthorized := func(reason string) {
		// Rejections are the unauthenticated caller's to multiply: the
		// warnings are rate-limited, and what they quote is bounded.
		if s.rejectLog.Allow() {
			log.Warn("event callback rejected", zap.String("reason", reason), zap.String("remoteAddr", truncate(r.RemoteAddr, 64)))
		}
		writeProblem(w, http.StatusUnauthorized, "unauthorized", "Unauthorized",
			"The callback is not signed with this integration's key.")
	}
	tooMany := func() {
		w.Header().Set("Retry-After", "1")
		writeProblem(w, http.StatusTooManyRequests, "rate-limited", "Too many requests",
			"Too many callbacks for this integration; retry later.")
	}
	// One budget for every id that is not a receiving integration, spent
	// before any log line or query: a flood of made-up ids gets 429s, costs
	// at most a query per token, and leaves the real integrations' budgets
	// alone.
	v := receivingNo
	if !store.ValidUUID(integrationID) {
		if !s.strangers.Allow() {
			v = receivingLimited
		}
	} else {
		var err error
		if v, err = s.receiving(ctx, integrationID); err != nil {
			log.Error("event callback: read the integrations receiving events", zap.Error(err))
			writeProblem(w, http.StatusInternalServerError, "internal", "Internal error", "The callback could not be stored; retry later.")
			return
		}
	}
	switch v {
	case receivingLimited:
		tooMany()
		return
	case receivingNo:
		unauthorized("unknown integration or events disabled")
		return
	}
	// Everything that fails from here on is charged to the failure budget
	// of this integration and source address, never to the integration's
	// own budget, which only signed callbacks spend.
	failed := func() bool {
		if s.failureLimiter(integrationID, r.RemoteAddr).Allow() {
			return false
		}
		tooMany()
		return true
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		if failed() {
			return
		}
		writeProblem(w, http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			"Send the callback as application/x-www-form-urlencoded.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
	if err := r.ParseForm(); err != nil {
		if failed() {
			return
		}
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeProblem(w, http.StatusRequestEntityTooLarge, "too-large", "Body too large",
				"The callback body is larger than this endpoint accepts.")
			return
		}
		writeProblem(w, http.StatusBadRequest, "bad-request", "Bad request", "The body is not a valid form.")
		return
	}
	topic, msg, mac := r.PostForm.Get("Topic"), r.PostForm.Get("MSG"), r.PostForm.Get("HMAC")

	key, brandID, err := s.receiverKey(ctx, integrationID)
	if errors.Is(err, errNoKey) {
		unauthorized("unknown integration or events disabled")
		return
	}
	if err != nil {
		log.Error("event callback: read the integration's key", zap.Error(err))
		writeProblem(w, http.StatusInternalServerError, "internal", "Internal error", "The callback could not be stored; retry later.")
		return
	}
	if !validHMAC(key, msg, mac) {
		if failed() {
			return
		}
		unauthorized("bad signature")
		return
	}
	if !s.limiter(integrationID).Allow() {
		tooMany()
		return
	}

	ev, ignore := parseEvent(integrationID, topic, msg, brandID, s.now())
	if ignore == "" && ev.OccurredAt.Before(s.now().Add(-MaxEventAge)) {
		// Applied events are purged after a week; an old signed MSG posted
		// again after that would otherwise be new to the dedupe keys.
		ignore = "CompletedDate is older than 48 hours"
	}
	if ignore != "" {
		log.Info("event callback ignored", zap.String("reason", ignore), zap.String("topic", truncate(topic, 100)))
		writeStatus(w, http.StatusOK, "ignored")
		return
	}
	var (
		id       int64
		inserted bool
	)
	rc := s.river
	err = s.store.WithTx(ctx, func(tx pgx.Tx) error {
		var err error
		if id, inserted, err = s.store.InsertEventTx(ctx, tx, ev); err != nil || !inserted || rc == nil {
			return err
		}
		_, err = rc.InsertTx(ctx, tx, ApplyArgs{EventID: id}, nil)
		return err
	})
	if err != nil {
		log.Error("event callback: store", zap.Error(err))
		writeProblem(w, http.StatusInternalServerError, "internal", "Internal error", "The callback could not be stored; retry later.")
		return
	}
	if !inserted {
		log.Debug("event callback replayed", zap.String("topic", ev.Topic))
		writeStatus(w, http.StatusOK, "duplicate")
		return
	}
	log.Debug("event callback stored", zap.Int64("eventId", id), zap.String("topic", ev.Topic))
	writeStatus(w, http.StatusAccepted, "accepted")
}

func msgDigest(msg string) []byte {
	d := sha256.Sum256([]byte(msg))
	return d[:]
}

// validHMAC compares the hex HMAC-SHA512 of msg in constant time.
func validHMAC(key []byte, msg, macHex string) bool {
	got, err := hex.DecodeString(strings.TrimSpace(macHex))
	if err != nil || len(got) != sha512.Size {
		return false
	}
	m := hmac.New(sha512.New, key)
	m.Write([]byte(msg))
	return hmac.Equal(m.Sum(nil), got)
}

// lenientString takes a JSON string, number or boolean as text, and null as "":
// the payload is not documented precisely enough to be strict.
type lenientString string

func (l *lenientString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		// No NUL reaches the database (it refuses one in text), as for
		// every string the qualtrics package decodes.
		*l = lenientString(strings.TrimSpace(strings.ReplaceAll(s, "\x00", "")))
		return nil
	}
	switch t := strings.TrimSpace(string(b)); {
	case t == "null":
		*l = ""
	case strings.HasPrefix(t, "{") || strings.HasPrefix(t, "["):
		*l = "" // not a scalar: treat as absent
	default:
		*l = lenientString(t)
	}
	return nil
}

// message is MSG. encoding/json matches field names case-insensitively.
type message struct {
	SurveyID       lenientString
	ResponseID     lenientString
	RecipientID    lenientString
	DistributionID lenientString
	CompletedDate  lenientString
	BrandID        lenientString
	Status         lenientString
}

// parseEvent reads a verified callback. A non-empty ignore says why the event
// is acknowledged but not stored.
func parseEvent(integrationID, topic, msg, brandID string, now time.Time) (ev store.QualtricsEvent, ignore string) {
	var m message
	if err := json.Unmarshal([]byte(msg), &m); err != nil {
		return ev, "MSG is not a JSON object"
	}
	topic = strings.TrimSpace(strings.ReplaceAll(topic, "\x00", ""))
	kind, topicSurvey := parseTopic(topic)
	if kind == "" {
		return ev, "unknown topic"
	}
	switch st := strings.ToLower(string(m.Status)); st {
	case "complete", "full", "":
	default:
		return ev, "status " + string(m.Status)
	}
	surveyID := string(m.SurveyID)
	switch {
	case surveyID == "":
		surveyID = topicSurvey
	case topicSurvey != "" && topicSurvey != surveyID:
		return ev, "the topic names another survey than MSG"
	}
	if surveyID == "" {
		return ev, "no survey id"
	}
	if brandID != "" && m.BrandID != "" && string(m.BrandID) != brandID {
		return ev, "another brand"
	}
	// Qualtrics signs MSG but not Topic: the MSG must be of the topic's kind,
	// so a signed survey-engine MSG cannot be posted as a control-panel
	// event (deactivating the survey), nor the reverse.
	switch {
	case kind == kindSurvey && (m.ResponseID != "" || m.RecipientID != "" || m.DistributionID != ""):
		return ev, "a control-panel topic with a response's MSG"
	case kind == kindRecipient && !strings.HasPrefix(topic, topicStarted) && m.ResponseID == "":
		return ev, "a response topic without a response id"
	}
	occurred := parseTime(string(m.CompletedDate))
	ev = store.QualtricsEvent{
		IntegrationID:  integrationID,
		Topic:          topic,
		SurveyID:       surveyID,
		ResponseID:     string(m.ResponseID),
		RecipientID:    string(m.RecipientID),
		DistributionID: string(m.DistributionID),
		Status:         string(m.Status),
		OccurredAt:     occurred,
		ReceivedAt:     now,
		MsgSHA256:      msgDigest(msg),
	}
	if kind != kindSurvey && (ev.RecipientID == "" || ev.DistributionID == "") {
		return ev, "no recipient or distribution"
	}
	if occurred == nil {
		// Without a date a MSG cannot be told from its replay, ever: an
		// undated control-panel MSG is the same bytes for every
		// (de)activation of the survey, under either topic. Qualtrics
		// documents CompletedDate on every callback; the sync catches up
		// with whatever an ignored event would have said.
		return ev, "no CompletedDate"
	}
	if ev.ResponseID == "" {
		// The dedupe key needs something that identifies the event (see the migration).
		// Every stored event is dated (above), so two (de)activations of a
		// survey differ by date and neither is a "duplicate" of the other.
		switch {
		case kind == kindSurvey:
			ev.ResponseID = noResponsePrefix + surveyID + "@" + string(m.CompletedDate)
		default:
			ev.ResponseID = noResponsePrefix + ev.DistributionID + "/" + ev.RecipientID
		}
	}
	return ev, ""
}

// truncate bounds text quoted in a log line to n bytes (and valid UTF-8).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

type topicKind string

const (
	kindRecipient topicKind = "recipient"
	kindSurvey    topicKind = "survey"
)

// parseTopic classifies a topic and returns the survey id it names, if any.
func parseTopic(topic string) (topicKind, string) {
	for _, p := range []string{topicCompleted, topicStarted, topicPartial} {
		if sv, ok := strings.CutPrefix(topic, p); ok && sv != "" && !strings.Contains(sv, ".") {
			return kindRecipient, sv
		}
	}
	if topic == topicActivate || topic == topicDeactivate {
		return kindSurvey, ""
	}
	return "", ""
}

// effect says what a stored event changes.
func effect(ev store.QualtricsEvent) store.EventEffect {
	switch {
	case strings.HasPrefix(ev.Topic, topicCompleted):
		return store.EventEffect{RecipientStatus: "SurveyFinished"}
	case strings.HasPrefix(ev.Topic, topicPartial):
		return store.EventEffect{RecipientStatus: "SurveyPartiallyFinished"}
	case strings.HasPrefix(ev.Topic, topicStarted):
		return store.EventEffect{RecipientStatus: "SurveyStarted"}
	case ev.Topic == topicActivate:
		active := true
		return store.EventEffect{SurveyActive: &active}
	case ev.Topic == topicDeactivate:
		active := false
		return store.EventEffect{SurveyActive: &active}
	}
	return store.EventEffect{}
}

// parseTime reads CompletedDate in the layouts seen; nil when none fits.
func parseTime(s string) *time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02 15:04:05Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			t = t.UTC()
			return &t
		}
	}
	return nil
}
