package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/manage"
	"github.com/microapps/microapps/store"
)

// The handlers here only speak HTTP: every rule about integrations
// (validation, the /whoami check, host switching, sealing, audit) lives in
// the manage service, which the console calls too.

// fromService turns a refusal of the manage service into its problem.
func fromService(err error) error {
	var me *manage.Error
	if !errors.As(err, &me) {
		return err
	}
	switch me.Kind {
	case manage.Invalid:
		fields := make([]fieldError, 0, len(me.Fields))
		for _, f := range me.Fields {
			fields = append(fields, fieldError(f))
		}
		return errValidation(fields)
	case manage.NotFound:
		return &apiError{status: http.StatusNotFound, kind: "not-found", title: "Not found", detail: me.Detail}
	case manage.Conflict:
		return &apiError{status: http.StatusConflict, kind: "conflict", title: "Conflict", detail: me.Detail}
	case manage.Rejected:
		return errUnprocessable(me.Detail)
	case manage.Unreachable:
		return errBadGateway(me.Detail)
	case manage.Unavailable:
		return &apiError{status: http.StatusServiceUnavailable, kind: "unavailable", title: "Unavailable", detail: me.Detail}
	}
	return err
}

func warningTexts(ws []manage.Warning) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Message)
	}
	return out
}

func (h *handler) createIntegration(w http.ResponseWriter, r *http.Request) error {
	var body integrationBody
	if err := decodeStrict(w, r, &body); err != nil {
		return err
	}
	c, err := h.svc.Create(r.Context(), h.actor(r), body.patch())
	if err != nil {
		return fromService(err)
	}
	res := toIntegrationResource(c.Integration, c.FirstRun)
	res.Warnings = warningTexts(c.Warnings)
	w.Header().Set("Location", "/api/v1/integrations/"+c.Integration.ID)
	writeJSON(w, http.StatusCreated, res)
	return nil
}

func (h *handler) resource(ctx context.Context, in store.Integration) (integrationResource, error) {
	last, err := h.svc.LastRun(ctx, in.ID)
	if err != nil {
		return integrationResource{}, err
	}
	return toIntegrationResource(in, last), nil
}

func (h *handler) listIntegrations(w http.ResponseWriter, r *http.Request) error {
	q := store.IntegrationQuery{Search: strings.TrimSpace(r.URL.Query().Get("q"))}
	var fields []fieldError
	limit, aerr := queryLimit(r, 100, 500)
	if aerr != nil {
		fields = append(fields, aerr.fields...)
	}
	q.Limit = limit
	if st := r.URL.Query().Get("status"); st != "" {
		if !microapps.IntegrationStatus(st).Valid() {
			fields = append(fields, fieldError{Field: "status", Message: "must be one of active, paused, error"})
		}
		q.Status = microapps.IntegrationStatus(st)
	}
	if c := r.URL.Query().Get("cursor"); c != "" {
		after, ok := decodeCursor(c)
		if !ok {
			fields = append(fields, fieldError{Field: "cursor", Message: "is not a cursor this API gave"})
		}
		q.After = after
	}
	if len(q.Search) > 200 {
		fields = append(fields, fieldError{Field: "q", Message: "must be at most 200 characters"})
	}
	if len(fields) > 0 {
		return errValidation(fields)
	}
	page, err := h.svc.Page(r.Context(), q)
	if err != nil {
		return err
	}
	items := make([]integrationResource, 0, len(page.Items))
	for _, it := range page.Items {
		items = append(items, toIntegrationResource(it.Integration, it.LastRun))
	}
	var next *string
	if page.Next != nil {
		c := encodeCursor(*page.Next)
		next = &c
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "next": next})
	return nil
}

// A cursor is opaque to clients: the last row's creation time and id.
func encodeCursor(c store.IntegrationCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(c.CreatedAt.UTC().Format(time.RFC3339Nano) + "|" + c.ID))
}

func decodeCursor(s string) (*store.IntegrationCursor, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, false
	}
	at, id, ok := strings.Cut(string(raw), "|")
	if !ok || !store.ValidUUID(id) {
		return nil, false
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return nil, false
	}
	return &store.IntegrationCursor{CreatedAt: t, ID: id}, true
}

func (h *handler) getIntegration(w http.ResponseWriter, r *http.Request) error {
	in, err := h.svc.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return fromService(err)
	}
	res, err := h.resource(r.Context(), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (h *handler) patchIntegration(w http.ResponseWriter, r *http.Request) error {
	var body integrationBody
	if err := decodeStrict(w, r, &body); err != nil {
		return err
	}
	updated, warnings, err := h.svc.Update(r.Context(), h.actor(r), chi.URLParam(r, "id"), body.patch())
	if err != nil {
		return fromService(err)
	}
	res, err := h.resource(r.Context(), updated)
	if err != nil {
		return err
	}
	res.Warnings = warningTexts(warnings)
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (h *handler) putToken(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Token *string `json:"token"`
	}
	if err := decodeStrict(w, r, &body); err != nil {
		return err
	}
	if _, err := h.svc.PutToken(r.Context(), h.actor(r), chi.URLParam(r, "id"), body.Token); err != nil {
		return fromService(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) deleteIntegration(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.Delete(r.Context(), h.actor(r), chi.URLParam(r, "id")); err != nil {
		return fromService(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) triggerSync(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Kind         *string `json:"kind"`
		OverrideVeto *bool   `json:"overrideVeto"`
	}
	if r.ContentLength != 0 {
		if err := decodeStrict(w, r, &body); err != nil {
			return err
		}
	}
	kind := microapps.SyncFull
	if body.Kind != nil {
		kind = microapps.SyncKind(*body.Kind)
	}
	id := chi.URLParam(r, "id")
	run, _, err := h.svc.TriggerSyncOverride(r.Context(), h.actor(r), id, kind, body.OverrideVeto != nil && *body.OverrideVeto)
	if err != nil {
		return fromService(err)
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/integrations/%s/syncs/%d", id, run.ID))
	writeJSON(w, http.StatusAccepted, toSyncRunResource(run))
	return nil
}

func (h *handler) listSyncs(w http.ResponseWriter, r *http.Request) error {
	limit, err := h.integrationLimit(r, 50, 500)
	if err != nil {
		return err
	}
	runs, err := h.svc.SyncRuns(r.Context(), chi.URLParam(r, "id"), limit)
	if err != nil {
		return fromService(err)
	}
	items := make([]syncRunResource, 0, len(runs))
	for _, run := range runs {
		items = append(items, toSyncRunResource(run))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

func (h *handler) getSync(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(chi.URLParam(r, "syncId"), 10, 64)
	if err != nil || id <= 0 {
		if _, err := h.svc.Get(r.Context(), chi.URLParam(r, "id")); err != nil {
			return fromService(err)
		}
		return errNotFound("This sync run")
	}
	run, err := h.svc.SyncRun(r.Context(), chi.URLParam(r, "id"), id)
	if err != nil {
		return fromService(err)
	}
	writeJSON(w, http.StatusOK, toSyncRunResource(run))
	return nil
}

type requestLogResource struct {
	At         time.Time `json:"at"`
	Method     string    `json:"method"`
	Path       string    `json:"path"`
	Status     int       `json:"status"`
	DurationMS int       `json:"durationMs"`
	RequestID  string    `json:"requestId"`
	ErrorCode  string    `json:"errorCode"`
	SyncID     *int64    `json:"syncId,omitempty"`
}

func (h *handler) listLogs(w http.ResponseWriter, r *http.Request) error {
	limit, err := h.integrationLimit(r, 500, 5000)
	if err != nil {
		return err
	}
	logs, err := h.svc.RequestLogs(r.Context(), chi.URLParam(r, "id"), limit)
	if err != nil {
		return fromService(err)
	}
	items := make([]requestLogResource, 0, len(logs))
	for _, l := range logs {
		items = append(items, requestLogResource{At: l.At, Method: l.Method, Path: l.Path, Status: l.Status,
			DurationMS: l.DurationMS, RequestID: l.RequestID, ErrorCode: l.ErrorCode, SyncID: l.SyncRunID})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

// integrationLimit reads the limit of a list of one integration's items: a
// missing integration is a 404 before a bad limit is a 400.
func (h *handler) integrationLimit(r *http.Request, def, max int) (int, error) {
	limit, aerr := queryLimit(r, def, max)
	if aerr != nil {
		if _, err := h.svc.Get(r.Context(), chi.URLParam(r, "id")); err != nil {
			return 0, fromService(err)
		}
		return 0, aerr
	}
	return limit, nil
}

func queryLimit(r *http.Request, def, max int) (int, *apiError) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, errValidation([]fieldError{{Field: "limit", Message: fmt.Sprintf("must be a whole number from 1 to %d", max)}})
	}
	return n, nil
}
