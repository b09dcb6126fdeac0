package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/store"
)

// ScaleSpec shapes the data LoadScale writes.
type ScaleSpec struct {
	Recipients   int     // recipient rows in all (invitations and reminders)
	Integrations int     // brands; integration 0 is the large one
	LargeShare   float64 // share of the rows in integration 0 (0: an even share)
	PerUser      int     // recipient rows per user on average (sets how many users there are)
	PerSurvey    int     // recipients of one survey's invitation (its reminder goes to the same people)
	// Notifications: new_survey raised over the last 30 days for this share
	// of the reached recipients (with their email deliveries, and webhook
	// ones for one integration in four).
	NotifiedShare float64
	Workers       int // integrations loaded at once
	Seed          uint64
	Offset        int // integration numbers start here (a brand added to loaded data)
	// Progress, when not nil, is called after each integration.
	Progress func(done, total int, rows int64)
}

// ScaleEmail is the email of user u of the scale data.
func ScaleEmail(u int) string { return fmt.Sprintf("user%07d@example.com", u) }

// ScaleIntegrationID is the id of integration i of the scale data.
func ScaleIntegrationID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012x", i+1) }

// ScaleAdmin is the Brand Admin of integration i.
func ScaleAdmin(i int) string { return fmt.Sprintf("admin%04d@example.com", i) }

// Users is how many users spec spreads its rows over.
func (sp ScaleSpec) Users() int { return max(1, sp.Recipients/max(1, sp.PerUser)) }

// RowsOf is how many recipient rows integration i gets.
func (sp ScaleSpec) RowsOf(i int) int {
	if sp.Integrations == 1 {
		return sp.Recipients
	}
	large := int(float64(sp.Recipients) * sp.LargeShare)
	if sp.LargeShare == 0 {
		large = sp.Recipients / sp.Integrations
	}
	if i == 0 {
		return large
	}
	// The rest evenly, the remainder one row each to the first ones: the
	// integrations' rows add up to Recipients exactly.
	rest, others := sp.Recipients-large, sp.Integrations-1
	n := rest / others
	if i-1 < rest%others {
		n++
	}
	return n
}

// LoadScale writes spec's brands as a first full sync of each would, through
// the store's own write path (UpsertSurveysTx, SetSurveyDetailsTx,
// UpsertDistributionsTx, the recipients merge, RecordSyncOutcomeTx), raises
// 30 days of new_survey notifications through the rule, and ends each
// integration with AnalyzeIfChanged as a sync's end does. It never runs
// ANALYZE by hand. Each survey has an invitation and a reminder to the same
// people; statuses span the reached, finished and bounced ones; 1% of links
// expire within 24 hours (half by their own expiry, half by their
// invitation's: one in two hundred is in the statistics window).
func LoadScale(ctx context.Context, st *store.Store, sp ScaleSpec, now time.Time) error {
	if sp.PerSurvey <= 0 {
		sp.PerSurvey = 250
	}
	if sp.PerUser <= 0 {
		sp.PerUser = 20
	}
	if sp.Workers <= 0 {
		sp.Workers = 2
	}
	var (
		next, done atomic.Int64
		rows       atomic.Int64
		firstErr   error
		mu         sync.Mutex
		wg         sync.WaitGroup
	)
	for range sp.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= sp.Integrations || ctx.Err() != nil {
					return
				}
				n, err := loadIntegration(ctx, st, sp, i, now)
				rows.Add(int64(n))
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("integration %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
				d := done.Add(1)
				if sp.Progress != nil {
					sp.Progress(int(d), sp.Integrations, rows.Load())
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

var scaleStatuses = []struct {
	status string
	weight int
}{
	{"Success", 25}, {"Opened", 20}, {"SurveyStarted", 5}, {"SurveyPartiallyFinished", 3}, {"SurveyFinished", 30},
	{"HardBounce", 3}, {"SoftBounce", 2}, {"Failure", 2}, {"Pending", 10},
}

func scaleStatus(rng *rand.Rand) string {
	n := rng.IntN(100)
	for _, s := range scaleStatuses {
		if n < s.weight {
			return s.status
		}
		n -= s.weight
	}
	return "Success"
}

func loadIntegration(ctx context.Context, st *store.Store, sp ScaleSpec, i int, now time.Time) (int, error) {
	rng := rand.New(rand.NewPCG(sp.Seed, uint64(i)))
	id := ScaleIntegrationID(i + sp.Offset)
	_, err := st.CreateIntegration(ctx, store.Integration{ID: id, Name: fmt.Sprintf("Brand %04d", i+sp.Offset), FunctionalGroup: fmt.Sprintf("Group %d", i%20),
		BaseURL: "https://iad1.qualtrics.com/API/v3/", AuthMethod: microapps.AuthToken, SecretSealed: []byte{0}, SecretKeyID: "k",
		RequestsPerMinute: 1500, RequestTimeoutSeconds: 60, Schedule: microapps.DefaultSchedule,
		Status: microapps.IntegrationActive}, store.AuditEvent{Actor: "scale", Action: "integration.create"})
	if err != nil {
		return 0, err
	}
	if err := st.PutBrandAdmin(ctx, id, ScaleAdmin(i+sp.Offset), store.AuditEvent{Actor: "scale", Action: "brand_admin.put"}); err != nil {
		return 0, err
	}
	if i%4 == 0 {
		if err := st.SetWebhook(ctx, id, store.Webhook{URL: "https://hooks.example.com/" + id}, store.AuditEvent{}); err != nil {
			return 0, err
		}
	}
	// Each survey has an invitation and a reminder to the first of the same
	// people; the integration's rows add up to RowsOf(i) exactly (no survey
	// larger than PerSurvey invitations, nor than there are users).
	total := sp.RowsOf(i)
	users := sp.Users()
	invites, reminders := (total+1)/2, total/2
	per := max(1, min(sp.PerSurvey, users))
	surveys := max(1, (invites+per-1)/per)
	share := func(n, s int) int {
		if s < n%surveys {
			return n/surveys + 1
		}
		return n / surveys
	}
	sv := make([]store.SurveyInput, surveys)
	for s := range sv {
		sv[s] = store.SurveyInput{ID: fmt.Sprintf("SV_%d_%d", i+sp.Offset, s), Name: fmt.Sprintf("Survey %d of brand %d", s, i+sp.Offset), IsActive: s%10 != 9,
			CreationDate: now.Add(-60 * 24 * time.Hour), LastModified: now.Add(-30 * 24 * time.Hour)}
	}
	if _, err := st.UpsertSurveys(ctx, id, sv, now); err != nil {
		return 0, err
	}
	written := 0
	var notify []store.RecipientRef
	for s := range surveys {
		surveyID := sv[s].ID
		end := now.Add(time.Duration(10+rng.IntN(80)) * 24 * time.Hour)
		invite, reminder := fmt.Sprintf("EMD_%d_%d_0", i+sp.Offset, s), fmt.Sprintf("EMD_%d_%d_1", i+sp.Offset, s)
		// One invitation in two hundred expires within the statistics window
		// (with the 0.5% of links below, 1% of links expire within 24 hours); a
		// few are expired already; some have no expiry of their own.
		var exp time.Time
		switch k := rng.IntN(200); {
		case k == 0:
			exp = now.Add(time.Duration(1+rng.IntN(23)) * time.Hour)
		case k < 20:
			exp = now.Add(-time.Duration(1+rng.IntN(20)) * 24 * time.Hour)
		case k < 50:
		default:
			exp = now.Add(time.Duration(2+rng.IntN(40)) * 24 * time.Hour)
		}
		sent := now.Add(-time.Duration(1+rng.IntN(30)) * 24 * time.Hour)
		// Distinct people: a person has one row per distribution.
		contacts := make([]int, 0, share(invites, s))
		picked := make(map[int]bool, cap(contacts))
		for len(contacts) < cap(contacts) {
			if u := rng.IntN(users); !picked[u] {
				picked[u] = true
				contacts = append(contacts, u)
			}
		}
		sizes := [2]int{len(contacts), share(reminders, s)}
		ds := []store.DistributionInput{
			{ID: invite, SurveyID: surveyID, RequestType: "Invite", RequestStatus: "Done", SendDate: sent, CreatedDate: sent,
				ModifiedDate: sent, LinkExpiration: exp, Subject: "Tell us", Stats: store.DistributionStats{Sent: sizes[0], Opened: sizes[0] / 2, Finished: sizes[0] / 3}},
			{ID: reminder, SurveyID: surveyID, ParentDistributionID: invite, RequestType: "Reminder", RequestStatus: "Done",
				SendDate: sent.Add(48 * time.Hour), CreatedDate: sent, ModifiedDate: sent, LinkExpiration: exp, Subject: "Reminder",
				Stats: store.DistributionStats{Sent: sizes[1], Opened: sizes[1] / 3, Finished: sizes[1] / 4}},
		}
		err := st.WithTx(ctx, func(tx pgx.Tx) error {
			if err := store.SetSurveyDetailsTx(ctx, tx, id, store.SurveyDetails{ID: surveyID, StartDate: sent, EndDate: end,
				ResponsesAuditable: sizes[0] / 3}, now); err != nil {
				return err
			}
			_, err := store.UpsertDistributionsTx(ctx, tx, id, ds, now)
			return err
		})
		if err != nil {
			return written, err
		}
		for k, d := range ds {
			// One distribution a transaction, as the sync writes them.
			err := st.WithTx(ctx, func(tx pgx.Tx) error {
				b, err := store.BeginRecipientsTx(ctx, tx, id, d.ID, surveyID)
				if err != nil {
					return err
				}
				h := make([]store.HistoryInput, 0, sizes[k])
				l := make([]store.LinkInput, 0, sizes[k])
				for _, u := range contacts[:sizes[k]] {
					cid := fmt.Sprintf("CID_%d", u)
					status := scaleStatus(rng)
					if k == 1 && status != "SurveyFinished" && status != "HardBounce" {
						status = "Success"
					}
					row := store.HistoryInput{ContactID: cid, ContactLookupID: "MLRP_" + cid, Status: status,
						ResponseID: "", SentAt: d.SendDate}
					switch status {
					case "Opened":
						row.OpenedAt = d.SendDate.Add(time.Hour)
					case "SurveyStarted", "SurveyPartiallyFinished":
						row.OpenedAt, row.ResponseStartedAt = d.SendDate.Add(time.Hour), d.SendDate.Add(2*time.Hour)
					case "SurveyFinished":
						row.OpenedAt, row.ResponseStartedAt = d.SendDate.Add(time.Hour), d.SendDate.Add(2*time.Hour)
						row.ResponseCompletedAt, row.ResponseID = d.SendDate.Add(3*time.Hour), fmt.Sprintf("R_%d_%d_%d", i, s, u)
					}
					h = append(h, row)
					link := store.LinkInput{ContactID: cid, Email: ScaleEmail(u), FirstName: "First", LastName: fmt.Sprintf("Last%d", u),
						Link: fmt.Sprintf("https://iad1.qualtrics.com/jfe/form/%s?Q_DL=%s_%d", surveyID, d.ID, u)}
					if rng.IntN(200) == 0 { // with the invitations above, 1% of links expire within 24 hours
						link.LinkExpiration = now.Add(time.Duration(1+rng.IntN(1439)) * time.Minute)
					}
					l = append(l, link)
					if k == 0 && store.Reached(status) && rng.Float64() < sp.NotifiedShare {
						notify = append(notify, store.RecipientRef{DistributionID: d.ID, ContactID: cid})
					}
				}
				if err := b.AddHistory(ctx, h); err != nil {
					return err
				}
				if err := b.AddLinks(ctx, l); err != nil {
					return err
				}
				m, err := b.Merge(ctx, now, nil)
				if err != nil {
					return err
				}
				written += m.Changed
				return store.SetRecipientsSyncedTx(ctx, tx, id, d.ID, "", now)
			})
			if err != nil {
				return written, err
			}
		}
	}
	full := now
	if err := st.WithTx(ctx, func(tx pgx.Tx) error {
		return store.RecordSyncOutcomeTx(ctx, tx, store.SyncOutcome{IntegrationID: id, At: full, Succeeded: true, FullSucceeded: true})
	}); err != nil {
		return written, err
	}
	// 30 days of new_survey notifications, through the rule, a day at a time.
	for day := 29; day >= 0 && len(notify) > 0; day-- {
		n := len(notify) / (day + 1)
		refs := notify[:n]
		notify = notify[n:]
		at := now.Add(-time.Duration(day) * 24 * time.Hour)
		err := st.WithTx(ctx, func(tx pgx.Tx) error {
			_, err := st.RaiseNewSurveyTx(ctx, tx, store.RaiseOptions{IntegrationID: id, Now: at, Window: 24 * time.Hour,
				FeedLifetime: 48 * time.Hour, Email: true, Webhook: true}, refs)
			return err
		})
		if err != nil {
			return written, err
		}
	}
	_, _, err = st.AnalyzeIfChanged(ctx, "recipients", "distributions", "surveys", "distribution_stats", "notifications", "deliveries")
	return written, err
}
