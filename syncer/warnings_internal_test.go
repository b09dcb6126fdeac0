package syncer

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/microapps/microapps/qualtrics"
)

type malformedCounter struct {
	Metrics
	got map[string]int
}

func (m *malformedCounter) ObserveMalformedValues(endpoint string, n int) { m.got[endpoint] += n }

// A run whose answers held dates that are no date gets one warning with an
// example that names the field and its shape but not the value, and the
// metric counts them; a run without any gets neither.
func TestMalformedDatesBecomeARunWarning(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"result":{"elements":[
			{"contactId":"CID_1","email":"ann@example.com","linkExpiration":"31.12.2026"},
			{"contactId":"CID_2","email":"bob@example.com","linkExpiration":"1.1.2027"},
			{"contactId":"CID_3","email":"cy@example.com","linkExpiration":"2026-12-31T17:00:00Z"}],"nextPage":null},"meta":{"httpStatus":"200 - OK"}}`)
	}))
	defer srv.Close()
	c, err := qualtrics.New(qualtrics.Config{BaseURL: srv.URL, AllowedHosts: []string{"127.0.0.1"},
		Auth: qualtrics.Auth{Token: "t"}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var warnings []string
	warn := func(format string, args ...any) { warnings = append(warnings, fmt.Sprintf(format, args...)) }
	m := &malformedCounter{got: map[string]int{}}

	noteDecodeWarnings(c, m, warn) // nothing read yet
	if len(warnings) != 0 || len(m.got) != 0 {
		t.Fatalf("warnings %v, metric %v before any answer", warnings, m.got)
	}
	for _, err := range c.DistributionLinks(context.Background(), "EMD_1", "SV_1") {
		if err != nil {
			t.Fatal(err)
		}
	}
	noteDecodeWarnings(c, m, warn)
	if len(warnings) != 1 {
		t.Fatalf("warnings = %v, want one", warnings)
	}
	w := warnings[0]
	if !strings.HasPrefix(w, "2 date values from Qualtrics could not be read") ||
		!strings.Contains(w, `distributions.links linkExpiration: "99.99.9999"`) {
		t.Fatalf("warning = %q", w)
	}
	if strings.Contains(w, "2026") || strings.Contains(w, "ann@") {
		t.Fatalf("the warning carries data: %q", w)
	}
	if m.got[qualtrics.EndpointDistributionsLinks] != 2 {
		t.Fatalf("metric = %v, want 2 on links", m.got)
	}
	noteDecodeWarnings(c, m, warn) // taken: not warned twice
	if len(warnings) != 1 {
		t.Fatalf("warned again: %v", warnings)
	}
	noteDecodeWarnings(nil, m, warn) // a run that never built its client
}
