package syncer_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/syncer"
)

// garbler rewrites every linkExpiration Qualtrics sends into a date the client
// cannot read ("X2026-…"), the way a changed date format would arrive.
type garbler struct{ next http.RoundTripper }

func (g garbler) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := g.next.RoundTrip(r)
	if err != nil || !strings.HasSuffix(r.URL.Path, "/links") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	body = bytes.ReplaceAll(body, []byte(`"linkExpiration":"`), []byte(`"linkExpiration":"X`))
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// A sync whose answers hold dates the client cannot read succeeds, and its run
// says so once, with an example that shows where and in what shape, never the
// value; the recipients' expiry falls back to their distribution's.
func TestUnreadableDatesWarnOnTheRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{syncOpts: func(o *syncer.Options) {
		o.ClientConfig = func(cfg *qualtrics.Config) {
			fastClient(cfg)
			cfg.Transport = garbler{next: http.DefaultTransport}
		}
	}})
	ctx := context.Background()
	run := e.sync(ctx, microapps.SyncFull)
	e.mustSucceed(run)
	var warning string
	for _, w := range run.Warnings {
		if strings.Contains(w, "could not be read") {
			if warning != "" {
				t.Fatalf("more than one warning about unreadable dates: %q", run.Warnings)
			}
			warning = w
		}
	}
	if !strings.Contains(warning, `distributions.links linkExpiration: "A9999-99-99A99:99:99A"`) {
		t.Fatalf("warnings %q lack the unreadable link expiries", run.Warnings)
	}
	if regexp.MustCompile(`20\d\d-\d\d-\d\d`).MatchString(warning) {
		t.Fatalf("the warning carries a value: %q", warning)
	}
	var withOwn, total int
	if err := e.st.Pool().QueryRow(ctx, `SELECT count(link_expiration), count(*) FROM recipients WHERE integration_id = $1`,
		e.in.ID).Scan(&withOwn, &total); err != nil {
		t.Fatal(err)
	}
	if total == 0 || withOwn != 0 {
		t.Fatalf("%d of %d recipients have a link expiry, want none read", withOwn, total)
	}
}
