package qualtrics

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A date Qualtrics sends that is no date is still read as no date, without
// failing its page, but the client counts it per endpoint and keeps the first
// one's field and shape (never the value) for the run to warn about.
func TestMalformedDatesAreCountedWithAnExample(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/links"):
			writeJSON(w, 200, okEnvelope(`{"elements":[
				{"contactId":"CID_1","email":"ann@example.com","linkExpiration":"31/12/2026 17:00"},
				{"contactId":"CID_2","email":"bob@example.com","linkExpiration":"2026-12-31T17:00:00Z"},
				{"contactId":"CID_3","email":"cy@example.com","linkExpiration":null},
				{"contactId":"CID_4","email":"di@example.com","linkExpiration":""},
				{"contactId":"CID_5","email":"ed@example.com","linkExpiration":1798736400000}],"nextPage":null}`))
		case strings.HasSuffix(r.URL.Path, "/history"):
			writeJSON(w, 200, okEnvelope(`{"elements":[
				{"contactId":"CID_1","status":"Success","sentAt":"2026-12-01T09:00:00.123Z"},
				{"contactId":"CID_2","status":"Opened","surveyLink":"https:\/\/x","sentAt":"yesterday","openedAt":"tomorrow"}],"nextPage":null}`))
		case strings.HasSuffix(r.URL.Path, "/distributions/EMD_1"):
			writeJSON(w, 200, okEnvelope(`{"id":"EMD_1","sendDate":"2026-12-01T09:00:00Z","surveyLink":{"expirationDate":"Dec 31"}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c, _ := newTestClient(t, srv, nil)
	ctx := context.Background()

	var links []Link
	for page, err := range c.DistributionLinks(ctx, "EMD_1", "SV_1") {
		if err != nil {
			t.Fatal(err)
		}
		links = append(links, page...)
	}
	if len(links) != 5 || !links[0].LinkExpiration.IsZero() || links[1].LinkExpiration.IsZero() {
		t.Fatalf("links read as %+v", links)
	}
	w := c.TakeDecodeWarnings()
	if w.Count() != 2 || w.MalformedDates[EndpointDistributionsLinks] != 2 {
		t.Fatalf("warnings after links = %+v, want 2 on links (null and \"\" are no date, not malformed)", w)
	}
	if want := (MalformedValue{Endpoint: EndpointDistributionsLinks, Field: "linkExpiration", Shape: `"99/99/9999 99:99"`}); w.Example != want {
		t.Fatalf("example = %+v, want %+v", w.Example, want)
	}
	if strings.Contains(w.Example.Shape, "31") || strings.Contains(w.Example.Shape, "ann") {
		t.Fatal("the example carries the value")
	}
	if w := c.TakeDecodeWarnings(); w.Count() != 0 {
		t.Fatalf("warnings were not reset: %+v", w)
	}

	for _, err := range c.DistributionHistory(ctx, "EMD_1") {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Distribution(ctx, "EMD_1"); err != nil {
		t.Fatal(err)
	}
	w = c.TakeDecodeWarnings()
	if w.MalformedDates[EndpointDistributionsHistory] != 2 || w.MalformedDates[EndpointDistributionsGet] != 1 || w.Count() != 3 {
		t.Fatalf("warnings = %+v, want 2 on history and 1 on the distribution", w)
	}
	if want := (MalformedValue{Endpoint: EndpointDistributionsHistory, Field: "sentAt", Shape: `"aaaaaaaaa"`}); w.Example != want {
		t.Fatalf("example = %+v, want %+v", w.Example, want)
	}
}

// What counts as malformed, and the shape noted for it: a date in another
// layout or a number is malformed; blanks and the layouts it knows are not.
func TestMalformedDatesAreNotedWithTheirShape(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ raw, shape string }{
		{`{"contactId":"CID_1","linkExpiration":"31/12/2026"}`, `"99/99/9999"`},
		{`{"contactId":"CID_1","linkExpiration":12345}`, `99999`},
		{`{"contactId":"CID_1","linkExpiration":"2026-12-31 17:00:00"}`, ""},
		{`{"contactId":"CID_1","linkExpiration":"  "}`, ""},
		{`{"contactId":"CID_1","linkExpiration":"été"}`, `"aaa"`},
		{`{"contactId":"CID_1","linkExpiration":"été 2026"}`, `"aaa 9999"`},
	} {
		var l Link
		if err := json.Unmarshal([]byte(tt.raw), &l); err != nil {
			t.Fatal(err)
		}
		switch {
		case tt.shape == "" && l.bad != nil:
			t.Errorf("%s: noted as malformed (%+v)", tt.raw, *l.bad)
		case tt.shape != "" && (l.bad == nil || l.bad.n != 1 || l.bad.field != "linkExpiration" || l.bad.shape != tt.shape):
			t.Errorf("%s: noted %+v, want one linkExpiration of shape %s", tt.raw, l.bad, tt.shape)
		}
	}
	var long Link
	_ = json.Unmarshal([]byte(`{"linkExpiration":"`+strings.Repeat("x", 100)+`"}`), &long)
	if long.bad == nil {
		t.Fatal("a long value is not noted")
	}
	if r := []rune(long.bad.shape); len(r) != maxShape+1 || r[maxShape] != '…' {
		t.Fatalf("a long value's shape is not cut: %q", long.bad.shape)
	}
}
