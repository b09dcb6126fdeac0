package reliability

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/syncer/synctest"
)

// chaosModel computes the notices DESIGN.md's rules call for from the
// simulator's history, never from the product's tables. Each change the
// Mover makes is followed by a look at the survey it touched: what the
// rules would raise at that moment goes into the "may" sets (the product
// may or may not have seen that moment, between two syncs). What they raise
// on the final state, once settled, is what "must" exist.
type chaosModel struct {
	sim    *qualtricssim.Server
	ints   []chaosIntegration
	admins []string
	began  time.Time // before the first syncs

	mu       sync.Mutex
	mayNew   map[string]bool        // brand|survey|email: a change made the row one to announce
	mayExp   map[string]time.Time   // brand|survey|email|epoch → expiry
	mayStats map[string][]time.Time // brand|distribution → expiries seen while the survey was active
	closed   map[string]bool        // surveys closed at some point
}

func newChaosModel(sim *qualtricssim.Server, ints []chaosIntegration, admins []string, began time.Time) *chaosModel {
	m := &chaosModel{sim: sim, ints: ints, began: began, mayNew: map[string]bool{}, mayExp: map[string]time.Time{},
		mayStats: map[string][]time.Time{}, closed: map[string]bool{}}
	for _, a := range admins {
		e, _ := microapps.NormalizeEmail(a)
		m.admins = append(m.admins, e)
	}
	return m
}

var (
	toAnswer = map[string]bool{"Success": true, "Opened": true, "Complaint": true, "SurveyStarted": true,
		"SurveyPartiallyFinished": true, "SessionExpired": true}
	finished = map[string]bool{"SurveyFinished": true, "SurveyScreenedOut": true}
)

// surveyState is one survey of the simulator's truth with its distributions
// and their recipients.
type surveyState struct {
	brand string
	sv    qualtricssim.Survey
	dists []qualtricssim.Distribution
	rcpt  map[string][]qualtricssim.Recipient
}

func (m *chaosModel) state(brand, surveyID string) surveyState {
	sv, _ := m.sim.Survey(surveyID)
	s := surveyState{brand: brand, sv: sv, dists: m.sim.Distributions(surveyID), rcpt: map[string][]qualtricssim.Recipient{}}
	for _, d := range s.dists {
		s.rcpt[d.ID] = m.sim.Recipients(d.ID)
	}
	return s
}

// expiry is the recipient's effective expiry: their link's, else the
// distribution's, else the survey's end.
func (s surveyState) expiry(d qualtricssim.Distribution, rc qualtricssim.Recipient) time.Time {
	switch {
	case !rc.LinkExpiration.IsZero():
		return rc.LinkExpiration
	case !d.LinkExpiration.IsZero():
		return d.LinkExpiration
	}
	return s.sv.EndDate
}

// expiring returns the survey_expiring candidates of the survey, whatever
// the clock: per email, the expiry of the invitation expiring last, when
// every invitation left to answer has one and none is finished. A finished
// row counts only in a distribution the product reads (live at the first
// sync or now): the sync never reads the recipients of an expired
// distribution or of a test email (synctest.IsLive), so a response finished
// through an old wave's expired reminder cannot hold a new wave's notice
// back (found by seed 978971378; see RELIABILITY.md).
func (s surveyState) expiring(began, now time.Time) map[string]time.Time {
	out := map[string]time.Time{}
	if !s.sv.IsActive {
		return out
	}
	type acc struct {
		max             time.Time
		never, finished bool
		any             bool
	}
	by := map[string]*acc{}
	for _, d := range s.dists {
		for _, rc := range s.rcpt[d.ID] {
			e, ok := microapps.NormalizeEmail(rc.Email)
			if !ok {
				continue
			}
			a := by[e]
			if a == nil {
				a = &acc{}
				by[e] = a
			}
			if finished[rc.Status] && (synctest.IsLive(d, began) || synctest.IsLive(d, now)) {
				a.finished = true
			}
			if d.RequestType == qualtricssim.RequestTestEmail || !toAnswer[rc.Status] {
				continue
			}
			a.any = true
			x := s.expiry(d, rc)
			if x.IsZero() {
				a.never = true
			} else if x.After(a.max) {
				a.max = x
			}
		}
	}
	for e, a := range by {
		if a.any && !a.never && !a.finished {
			out[e] = a.max
		}
	}
	return out
}

// statistics returns each invitation's link expiry, when the survey is active.
func (s surveyState) statistics() map[string]time.Time {
	out := map[string]time.Time{}
	if !s.sv.IsActive {
		return out
	}
	for _, d := range s.dists {
		if d.RequestType != qualtricssim.RequestTestEmail && d.ParentDistributionID == "" && !d.LinkExpiration.IsZero() {
			out[d.ID] = d.LinkExpiration
		}
	}
	return out
}

// announced reports whether the row of contact in dist is one new_survey
// announces at now.
func (s surveyState) announced(dist, contact string, now time.Time) (string, bool) {
	if !s.sv.IsActive || (!s.sv.EndDate.IsZero() && !s.sv.EndDate.After(now)) {
		return "", false
	}
	for _, d := range s.dists {
		if d.ID != dist || d.ParentDistributionID != "" || d.RequestType == qualtricssim.RequestTestEmail {
			continue
		}
		for _, rc := range s.rcpt[d.ID] {
			if rc.ContactID != contact || !toAnswer[rc.Status] {
				continue
			}
			if x := s.expiry(d, rc); !x.IsZero() && !x.After(now) {
				return "", false
			}
			return microapps.NormalizeEmail(rc.Email)
		}
	}
	return "", false
}

func (m *chaosModel) look(s surveyState, now time.Time) {
	for e, x := range s.expiring(m.began, now) {
		m.mayExp[fmt.Sprintf("%s|%s|%s|%d", s.brand, s.sv.ID, e, x.Unix())] = x
	}
	for d, x := range s.statistics() {
		k := s.brand + "|" + d
		if !slices.ContainsFunc(m.mayStats[k], x.Equal) {
			m.mayStats[k] = append(m.mayStats[k], x)
		}
	}
}

// snapshotAll looks at every survey, once, before Qualtrics starts moving.
func (m *chaosModel) snapshotAll(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range m.sim.BrandIDs() {
		for _, sv := range m.sim.Surveys(b) {
			m.look(m.state(b, sv.ID), now)
		}
	}
}

// snapshot looks at the survey a change touched, right after it.
func (m *chaosModel) snapshot(c qualtricssim.Change, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.state(c.BrandID, c.SurveyID)
	m.look(s, now)
	switch c.Kind {
	case "close":
		m.closed[c.SurveyID] = true
	case "status":
		if e, ok := s.announced(c.DistributionID, c.ContactID, now); ok {
			m.mayNew[c.BrandID+"|"+c.SurveyID+"|"+e] = true
		}
	case "survey":
		for _, rc := range s.rcpt[c.DistributionID] {
			if e, ok := s.announced(c.DistributionID, rc.ContactID, now); ok {
				m.mayNew[c.BrandID+"|"+c.SurveyID+"|"+e] = true
			}
		}
	}
}

// expected returns the dedupe keys that must exist and those that may.
func (m *chaosModel) expected(tBegin, tSettle, tSettleEnd time.Time, skew time.Duration) (must, may map[string]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	must, may = map[string]string{}, map[string]string{}
	mustFrom, mustTo := tSettleEnd.Add(skew+time.Minute), tSettle.Add(24*time.Hour-time.Minute)
	mayFrom, mayTo := tBegin.Add(-time.Minute), tSettleEnd.Add(24*time.Hour+skew+time.Minute)
	in := func(x, from, to time.Time) bool { return x.After(from) && !x.After(to) }
	intsOf := func(brand string) []string {
		var ids []string
		for _, i := range m.ints {
			if i.brand == brand {
				ids = append(ids, i.id)
			}
		}
		return ids
	}
	for k, x := range m.mayExp {
		p := strings.Split(k, "|")
		if in(x, mayFrom, mayTo) {
			for _, id := range intsOf(p[0]) {
				may[fmt.Sprintf("survey_expiring:%s:%s:%s:%s", id, p[1], p[2], p[3])] = "survey_expiring"
			}
		}
	}
	for k, xs := range m.mayStats {
		p := strings.Split(k, "|")
		if slices.ContainsFunc(xs, func(x time.Time) bool { return in(x, mayFrom, mayTo) }) {
			for _, id := range intsOf(p[0]) {
				for _, a := range m.admins {
					may[fmt.Sprintf("survey_statistics:%s:%s:%s", id, p[1], a)] = "survey_statistics"
				}
			}
		}
	}
	for k := range m.mayNew {
		p := strings.Split(k, "|")
		for _, id := range intsOf(p[0]) {
			may[fmt.Sprintf("new_survey:%s:%s:%s", id, p[1], p[2])] = "new_survey"
		}
	}
	// The final state, settled.
	for _, b := range m.sim.BrandIDs() {
		for _, sv := range m.sim.Surveys(b) {
			s := m.state(b, sv.ID)
			for e, x := range s.expiring(m.began, tSettleEnd) {
				if in(x, mustFrom, mustTo) {
					for _, id := range intsOf(b) {
						must[fmt.Sprintf("survey_expiring:%s:%s:%s:%d", id, sv.ID, e, x.Unix())] = "survey_expiring"
					}
				}
			}
			for d, x := range s.statistics() {
				if in(x, mustFrom, mustTo) {
					for _, id := range intsOf(b) {
						for _, a := range m.admins {
							must[fmt.Sprintf("survey_statistics:%s:%s:%s", id, d, a)] = "survey_statistics"
						}
					}
				}
			}
			if m.closed[sv.ID] {
				continue
			}
			for _, d := range s.dists {
				for _, rc := range s.rcpt[d.ID] {
					e, ok := s.announced(d.ID, rc.ContactID, tSettleEnd)
					if ok && m.mayNew[b+"|"+sv.ID+"|"+e] {
						for _, id := range intsOf(b) {
							must[fmt.Sprintf("new_survey:%s:%s:%s", id, sv.ID, e)] = "new_survey"
						}
					}
				}
			}
		}
	}
	return must, may
}

// chaosChecker reads the database, the simulator and the history once the
// system has settled, and reports.
type chaosChecker struct {
	t       testing.TB
	st      *store.Store
	sim     *qualtricssim.Server
	ints    []chaosIntegration
	model   *chaosModel
	mail    *chaosMail
	hooks   *hookReceiver
	hist    *history
	slots   []*slot
	rec     *recoveries
	secrets []string
	seed    int64
	skew    time.Duration

	tBegin, tSettle, tSettleEnd time.Time
}

func (c *chaosChecker) run() {
	t := c.t
	ctx := context.Background()
	report := &strings.Builder{}
	fmt.Fprintf(report, "chaos checker, seed %d\n", c.seed)
	h := c.hist
	fmt.Fprintf(report, "faults: %d SIGKILL, %d PostgreSQL restarts, clock ahead %v on %s; bursts: 429 %d, 500 %d, 504 %d, slow %d, truncated %d, SMTP drops %d, webhook 500 %d, webhook hangs %d; event callbacks %d (duplicated %d, late %d)\n",
		h.count("fault SIGKILL"), h.count("fault PostgreSQL start"), c.skew, c.slots[2].name,
		h.count("fault Qualtrics 429"), h.count("fault Qualtrics 500"), h.count("fault Qualtrics 504"), h.count("fault Qualtrics slow"),
		h.count("fault Qualtrics truncated"), h.count("fault SMTP drops mid-message"), h.count("fault webhook 500"), h.count("fault webhook hangs"),
		h.count("event callback"), h.count("event duplicated"), h.count("event late"))
	fmt.Fprintf(report, "Qualtrics changes: %d new surveys, %d status changes, %d surveys closed, %d links shortened; syncs asked %d\n",
		h.count("change survey"), h.count("change status"), h.count("change close"), h.count("change expire"), h.count("sync asked"))

	// 1. Data equals the simulator's.
	for _, in := range c.ints {
		n := synctest.MatchesSim(t, c.st, c.sim, in.brand, in.id)
		fmt.Fprintf(report, "data: %s equals the simulator (%d recipients compared)\n", in.name, n)
	}

	// 2. Notices: what the rules call for, exactly once, and none else.
	must, may := c.model.expected(c.tBegin, c.tSettle, c.tSettleEnd, c.skew)
	rows, err := c.st.Pool().Query(ctx, `SELECT kind, dedupe_key, count(*) OVER (PARTITION BY kind, integration_id, survey_id, distribution_id, email) FROM notifications`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	twice := 0
	for rows.Next() {
		var kind, key string
		var n int
		if err := rows.Scan(&kind, &key, &n); err != nil {
			t.Fatal(err)
		}
		got[key] = kind
		if n > 1 && kind != "survey_expiring" {
			twice++
		}
	}
	rows.Close()
	var missing, unexpected []string
	mustBy, gotBy := map[string]int{}, map[string]int{}
	for k, kind := range must {
		mustBy[kind]++
		if _, ok := got[k]; !ok {
			missing = append(missing, k)
		}
	}
	for k, kind := range got {
		gotBy[kind]++
		_, m1 := must[k]
		_, m2 := may[k]
		if !m1 && !m2 {
			unexpected = append(unexpected, k)
		}
	}
	mayOnly := 0
	for k := range may {
		if _, ok := must[k]; !ok {
			mayOnly++
		}
	}
	fmt.Fprintf(report, "notices: %d raised %v; %d required by the rules %v, %d more allowed (moments between syncs); missing %d, not called for %d, raised twice %d\n",
		len(got), gotBy, len(must), mustBy, mayOnly, len(missing), len(unexpected), twice)
	sort.Strings(missing)
	sort.Strings(unexpected)
	for _, k := range missing {
		t.Errorf("notice missing: %s\n%s", k, c.explain(k))
	}
	for _, k := range unexpected {
		t.Errorf("notice the rules do not call for: %s\n%s", k, c.explain(k))
	}
	if twice > 0 {
		t.Errorf("%d notices raised twice for one recipient and survey", twice)
	}
	if len(must) == 0 || gotBy["new_survey"] == 0 {
		t.Errorf("the run proves little: %d notices required, %d new_survey raised", len(must), gotBy["new_survey"])
	}

	// 3. Deliveries: each reached its receiver at least once, duplicates
	// carry the same key.
	c.checkDeliveries(report, got)

	// 4. Nothing left behind.
	var open, discarded, staged, pendingUnits int
	var discardedKinds []string
	_ = c.st.Pool().QueryRow(ctx, `SELECT count(*) FROM sync_runs WHERE status IN ('queued', 'running') AND created_at < $1`, c.tSettle).Scan(&open)
	_ = c.st.Pool().QueryRow(ctx, `SELECT count(*), coalesce(array_agg(kind || ': ' || left(coalesce(errors[array_length(errors, 1)]::text, ''), 300)), '{}') FROM river_job WHERE state = 'discarded'`).Scan(&discarded, &discardedKinds)
	_ = c.st.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM sync_stage_history s JOIN sync_runs r ON r.id = s.run_id WHERE r.status IN ('succeeded', 'failed'))
		+ (SELECT count(*) FROM sync_stage_links s JOIN sync_runs r ON r.id = s.run_id WHERE r.status IN ('succeeded', 'failed'))`).Scan(&staged)
	_ = c.st.Pool().QueryRow(ctx, `SELECT count(*) FROM sync_units u JOIN sync_runs r ON r.id = u.run_id WHERE r.status = 'succeeded' AND u.status = 'pending'`).Scan(&pendingUnits)
	var runs, failedRuns int
	_ = c.st.Pool().QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status = 'failed') FROM sync_runs`).Scan(&runs, &failedRuns)
	fmt.Fprintf(report, "leftovers: %d sync runs (%d failed under faults), %d left queued/running, %d River jobs discarded, %d staged rows of finished runs, %d pending units of succeeded runs\n",
		runs, failedRuns, open, discarded, staged, pendingUnits)
	if open > 0 {
		t.Errorf("%d sync runs created before settling are still queued or running", open)
	}
	if discarded > 0 {
		t.Errorf("%d River jobs discarded: %v", discarded, discardedKinds)
	}
	if staged > 0 || pendingUnits > 0 {
		t.Errorf("%d staged rows of finished runs and %d pending units of succeeded runs left behind", staged, pendingUnits)
	}

	// 5. Memory flat, no secret in any log line.
	for _, s := range c.slots {
		s.mu.Lock()
		var longest *chaosProc
		for _, p := range s.procs {
			if longest == nil || len(p.rss) > len(longest.rss) {
				longest = p
			}
		}
		var rss []int64
		if longest != nil {
			rss = slices.Clone(longest.rss)
		}
		s.mu.Unlock()
		if len(rss) < 4 {
			fmt.Fprintf(report, "memory: %s, %d process(es), too few samples (%d)\n", s.name, len(s.procs), len(rss))
			continue
		}
		q := len(rss) / 4
		early, late := slices.Max(rss[q:2*q]), slices.Max(rss[len(rss)-q:])
		fmt.Fprintf(report, "memory: %s, %d process(es); the longest-lived one's RSS %d MiB (2nd quarter max) → %d MiB (last quarter max), %d samples\n",
			s.name, len(s.procs), early/1024, late/1024, len(rss))
		if float64(late) > 1.5*float64(early)+32*1024 {
			t.Errorf("%s's memory grew: %d KiB → %d KiB", s.name, early, late)
		}
	}
	leaks := 0
	for _, s := range c.slots {
		for i, line := range strings.Split(s.logs(), "\n") {
			if sec := containsAny(line, c.secrets...); sec != "" {
				leaks++
				t.Errorf("%s log line %d holds a secret (…%s): %.300s", s.name, i+1, sec[len(sec)-4:], line)
			}
		}
	}
	fmt.Fprintf(report, "secrets: %d log lines hold one\n", leaks)

	// 6. Recovery after each kill.
	c.rec.mu.Lock()
	took := slices.Clone(c.rec.took)
	left := len(c.rec.pending)
	c.rec.mu.Unlock()
	slices.Sort(took)
	if len(took) > 0 {
		fmt.Fprintf(report, "recovery: %d runs in flight at a kill ended; kill → end p50 %v, p99 %v, max %v; %d never seen ending\n", len(took),
			percentile(took, 50).Round(time.Millisecond), percentile(took, 99).Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), left)
	} else {
		fmt.Fprintf(report, "recovery: no run was in flight at a kill; %d never seen ending\n", left)
	}
	if left > 0 {
		t.Errorf("%d runs in flight at a kill were never seen ending", left)
	}
	t.Log(report.String())
	if _, ok := t.(*testing.B); ok {
		fmt.Print(report.String()) // a benchmark's log is cut short
	}
	h.add("run", "checked", map[string]any{"report": report.String(), "failed": t.Failed()})
}

func idempotencyKey(channel, dedupeKey string) string {
	sum := sha256.Sum256([]byte(channel + ":" + dedupeKey))
	return "ntf_" + hex.EncodeToString(sum[:])[:40]
}

func (c *chaosChecker) checkDeliveries(report *strings.Builder, notices map[string]string) {
	t := c.t
	ctx := context.Background()
	rows, err := c.st.Pool().Query(ctx, `SELECT n.dedupe_key, d.channel, d.idempotency_key, d.status, d.attempts, d.last_error
		FROM deliveries d JOIN notifications n ON n.id = d.notification_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	c.mail.mu.Lock()
	mails := map[string]int{}
	for id, n := range c.mail.received {
		local, _, _ := strings.Cut(id, "@")
		mails[local] += n
	}
	dropped := c.mail.dropped
	c.mail.mu.Unlock()
	c.hooks.mu.Lock()
	hooks := maps(c.hooks.received)
	refused, noKey := c.hooks.refused, c.hooks.noKey
	c.hooks.mu.Unlock()

	perNotice := map[string]map[string]bool{}
	byStatus := map[string]int{}
	var emails, webhooks, emailDup, hookDup, lost, badKey, unsubscribed int
	var dupKeys []string
	known := map[string]bool{}
	for rows.Next() {
		var dedupe, channel, key, status string
		var attempts int
		var lastError string
		if err := rows.Scan(&dedupe, &channel, &key, &status, &attempts, &lastError); err != nil {
			t.Fatal(err)
		}
		byStatus[channel+" "+status]++
		known[key] = true
		if perNotice[dedupe] == nil {
			perNotice[dedupe] = map[string]bool{}
		}
		perNotice[dedupe][channel] = true
		if key != idempotencyKey(channel, dedupe) {
			badKey++
			t.Errorf("delivery %s of %s has key %s, not the one its notice gives", channel, dedupe, key)
		}
		n := 0
		switch channel {
		case "email":
			emails++
			n = mails[key]
			if n > 1 {
				emailDup++
			}
		case "webhook":
			webhooks++
			n = hooks[key]
			if n > 1 {
				hookDup++
			}
		}
		if n > 1 {
			dupKeys = append(dupKeys, fmt.Sprintf("%s %s ×%d", channel, key, n))
		}
		if status == "skipped" && channel == "email" && lastError == "the recipient unsubscribed in Qualtrics" {
			unsubscribed++
			continue
		}
		if status != "sent" || n == 0 {
			lost++
			t.Errorf("%s delivery of %s: status %s after %d attempts, received %d times", channel, dedupe, status, attempts, n)
		}
	}
	for k := range notices {
		if !perNotice[k]["email"] || !perNotice[k]["webhook"] {
			t.Errorf("notice %s has deliveries %v, want email and webhook", k, perNotice[k])
		}
	}
	unknown := 0
	for k := range hooks {
		if !known[k] {
			unknown++
		}
	}
	for k := range mails {
		if !known[k] {
			unknown++
		}
	}
	if unknown > 0 || noKey > 0 {
		t.Errorf("%d messages received with a key no delivery has, %d webhooks without Idempotency-Key", unknown, noKey)
	}
	sort.Strings(dupKeys)
	fmt.Fprintf(report, "deliveries: %d email, %d webhook %v; not received %d; skipped as unsubscribed in Qualtrics %d; duplicates: %d email (same Message-ID), %d webhook (same Idempotency-Key) %v; refused by the receiver under faults %d webhook, %d emails dropped mid-message\n",
		emails, webhooks, byStatus, lost, unsubscribed, emailDup, hookDup, dupKeys, refused, dropped)
	_ = badKey
}

func maps(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// explain shows what the simulator and the database hold for the survey
// and email (or distribution) of a notice's dedupe key.
func (c *chaosChecker) explain(key string) string {
	p := strings.Split(key, ":")
	if len(p) < 4 {
		return ""
	}
	var b strings.Builder
	surveyID, email := p[2], p[3]
	if p[0] == "survey_statistics" {
		d, _ := c.sim.Distribution(p[2])
		surveyID, email = d.SurveyID, ""
		fmt.Fprintf(&b, "  distribution %s: type %s, parent %q, links expire %v\n", d.ID, d.RequestType, d.ParentDistributionID, d.LinkExpiration)
	}
	sv, _ := c.sim.Survey(surveyID)
	fmt.Fprintf(&b, "  simulator: survey %s active %v, ends %v, closed by the mover %v\n", sv.ID, sv.IsActive, sv.EndDate, c.model.closed[sv.ID])
	for _, d := range c.sim.Distributions(surveyID) {
		for _, rc := range c.sim.Recipients(d.ID) {
			if e, _ := microapps.NormalizeEmail(rc.Email); email != "" && e == email {
				fmt.Fprintf(&b, "  simulator: %s (%s, parent %q, links %v) %s: %s, link expires %v, unsubscribed %v\n",
					d.ID, d.RequestType, d.ParentDistributionID, d.LinkExpiration, rc.ContactID, rc.Status, rc.LinkExpiration, rc.Unsubscribed)
			}
		}
	}
	if email != "" {
		rows, err := c.st.Pool().Query(context.Background(), `SELECT distribution_id, contact_id, status, expires_at, deleted_at IS NOT NULL
			FROM recipients WHERE integration_id = $1 AND survey_id = $2 AND email = $3`, p[1], surveyID, email)
		if err == nil {
			for rows.Next() {
				var d, ct, st string
				var exp *time.Time
				var del bool
				_ = rows.Scan(&d, &ct, &st, &exp, &del)
				fmt.Fprintf(&b, "  database: %s %s: %s, expires %v, deleted %v\n", d, ct, st, exp, del)
			}
			rows.Close()
		}
	}
	return b.String()
}
