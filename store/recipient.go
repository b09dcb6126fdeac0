package store

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// HistoryInput is one element of a distribution's history: status and dates.
type HistoryInput struct {
	ContactID           string
	ContactLookupID     string
	Status              string
	SurveyLink          string
	ResponseID          string
	SentAt              time.Time
	OpenedAt            time.Time
	ResponseStartedAt   time.Time
	ResponseCompletedAt time.Time
}

// LinkInput is one element of a distribution's links: who the contact is and
// their personal link. Its status is not kept: history is the source of truth.
type LinkInput struct {
	ContactID                string
	Email                    string
	FirstName                string
	LastName                 string
	Link                     string
	LinkExpiration           time.Time
	Unsubscribed             bool
	ExceededContactFrequency bool
}

// RecipientBatch stages the history and links pages of ONE distribution in
// the database, then joins them on contactId and merges them into recipients
// in one statement. Nothing of the distribution is held in Go memory: a
// distribution can have 100,000 recipients. It lives in one transaction.
//
// A small distribution (the usual one) is held in memory instead, up to
// memRecipientRows rows, and merged from arrays: staging costs a table
// truncation at every commit and four more round trips, which cost more than
// the merge itself for a few dozen rows. A batch moves to staging for good
// the moment it outgrows the limit.
type RecipientBatch struct {
	tx             pgx.Tx
	integrationID  string
	distributionID string
	surveyID       string
	ord            int
	staged         bool
	history        []HistoryInput
	links          []LinkInput
}

// memRecipientRows is how many staged rows (history and links) a batch holds
// in memory before it moves them to the staging tables. 600 covers the usual
// distribution while keeping a sync's memory flat as brands grow: with 1,000,
// ingest was ~10% faster but peak RSS grew 29% when the benchmark brand
// doubled (syncer BenchmarkFullSync), against 6% with 600.
var memRecipientRows atomic.Int64

func init() { memRecipientRows.Store(600) }

// RecipientMerge is what Merge did.
type RecipientMerge struct {
	Recipients int // rows read (history joined with links)
	Changed    int // rows inserted or updated
	Deleted    int // rows no longer listed, marked deleted
	Changes    int // changes reported
}

const historyStaging = `ord int NOT NULL, contact_id text NOT NULL, contact_lookup_id text NOT NULL, status text NOT NULL,
	survey_link text NOT NULL, response_id text NOT NULL, sent_at timestamptz, opened_at timestamptz,
	response_started_at timestamptz, response_completed_at timestamptz`

const linkStaging = `ord int NOT NULL, contact_id text NOT NULL, email text NOT NULL, first_name text NOT NULL,
	last_name text NOT NULL, link text NOT NULL, link_expiration timestamptz, unsubscribed boolean NOT NULL,
	exceeded boolean NOT NULL`

const changeStaging = `contact_id text PRIMARY KEY, kind text NOT NULL`

// BeginRecipientsTx starts staging one distribution's recipients in tx.
// Nothing is sent to the database until the batch outgrows memory or merges.
func BeginRecipientsTx(ctx context.Context, tx pgx.Tx, integrationID, distributionID, surveyID string) (*RecipientBatch, error) {
	return &RecipientBatch{tx: tx, integrationID: integrationID, distributionID: distributionID, surveyID: surveyID}, nil
}

// stage creates the staging tables (once per connection) and moves the rows
// held in memory into them. Staging tables are empty at the start of every
// transaction: ON COMMIT DELETE ROWS empties them at commit, and rows of a
// rolled-back transaction are gone with it.
func (b *RecipientBatch) stage(ctx context.Context) error {
	if b.staged {
		return nil
	}
	// One round trip for the three tables: a sync stages every large distribution.
	_, err := b.tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS sync_history_stage (`+historyStaging+`) ON COMMIT DELETE ROWS;
		CREATE TEMP TABLE IF NOT EXISTS sync_links_stage (`+linkStaging+`) ON COMMIT DELETE ROWS;
		CREATE TEMP TABLE IF NOT EXISTS sync_recipient_changes (`+changeStaging+`) ON COMMIT DELETE ROWS`)
	if err != nil {
		return mapErr("stage recipients", err)
	}
	b.staged = true
	h, l := b.history, b.links
	b.history, b.links, b.ord = nil, nil, 0
	if len(h) > 0 {
		if err := b.copyHistory(ctx, h); err != nil {
			return err
		}
	}
	if len(l) > 0 {
		if err := b.copyLinks(ctx, l); err != nil {
			return err
		}
	}
	return nil
}

// AddHistory stages one page of history.
func (b *RecipientBatch) AddHistory(ctx context.Context, page []HistoryInput) error {
	if !b.staged {
		if int64(len(b.history)+len(b.links)+len(page)) <= memRecipientRows.Load() {
			b.history = append(b.history, page...)
			return nil
		}
		if err := b.stage(ctx); err != nil {
			return err
		}
	}
	return b.copyHistory(ctx, page)
}

func (b *RecipientBatch) copyHistory(ctx context.Context, page []HistoryInput) error {
	base := b.ord
	b.ord += len(page)
	_, err := b.tx.CopyFrom(ctx, pgx.Identifier{"sync_history_stage"},
		[]string{"ord", "contact_id", "contact_lookup_id", "status", "survey_link", "response_id", "sent_at", "opened_at",
			"response_started_at", "response_completed_at"},
		pgx.CopyFromSlice(len(page), func(i int) ([]any, error) {
			h := &page[i]
			return []any{base + i, h.ContactID, h.ContactLookupID, h.Status, h.SurveyLink, h.ResponseID, timeArg(h.SentAt),
				timeArg(h.OpenedAt), timeArg(h.ResponseStartedAt), timeArg(h.ResponseCompletedAt)}, nil
		}))
	return mapErr("stage history", err)
}

// AddLinks stages one page of links.
func (b *RecipientBatch) AddLinks(ctx context.Context, page []LinkInput) error {
	if !b.staged {
		if int64(len(b.history)+len(b.links)+len(page)) <= memRecipientRows.Load() {
			b.links = append(b.links, page...)
			return nil
		}
		if err := b.stage(ctx); err != nil {
			return err
		}
	}
	return b.copyLinks(ctx, page)
}

func (b *RecipientBatch) copyLinks(ctx context.Context, page []LinkInput) error {
	base := b.ord
	b.ord += len(page)
	_, err := b.tx.CopyFrom(ctx, pgx.Identifier{"sync_links_stage"},
		[]string{"ord", "contact_id", "email", "first_name", "last_name", "link", "link_expiration", "unsubscribed", "exceeded"},
		pgx.CopyFromSlice(len(page), func(i int) ([]any, error) {
			l := &page[i]
			return []any{base + i, l.ContactID, l.Email, l.FirstName, l.LastName, l.Link, timeArg(l.LinkExpiration),
				l.Unsubscribed, l.ExceededContactFrequency}, nil
		}))
	return mapErr("stage links", err)
}

// The join: status and dates from history, email, names and the personal
// link from links (history's surveyLink when links have none). A contact in
// only one of the two still makes a row. The change kinds are decided against
// the snapshot in old and written to a staging table, which Merge then reads
// in chunks so a 100,000-recipient distribution never sits in Go memory.
//
// The listing never moves a recipient's progress backwards: Qualtrics'
// listings lag behind events, so a row whose status ranks lower than the
// stored one (SurveyFinished set by an event, Opened in the listing) keeps the
// stored status and dates unless one of its dates is newer than every stored
// one. The test is made against the row as locked by ON CONFLICT, so an event
// that committed while the listing was read is seen. recipient_delivered is
// reported when the status becomes a reached one (docs/ARCHITECTURE.md), also from a
// bounce (SoftBounce, then Success on a later sync).
//
// expires_at is the effective expiry: the link's, else the distribution's,
// else the survey's end date.
var mergeRecipientsTmpl = `
WITH dist AS (
	SELECT coalesce((SELECT request_type = 'TestEmail' FROM distributions
		WHERE integration_id = $1 AND qualtrics_id = $2), false) AS is_test,
		(SELECT link_expiration FROM distributions WHERE integration_id = $1 AND qualtrics_id = $2) AS link_expiration,
		(SELECT end_date FROM surveys WHERE integration_id = $1 AND qualtrics_id = $3) AS end_date
), h AS (
	SELECT DISTINCT ON (contact_id) * FROM {history} ORDER BY contact_id, ord DESC
), l AS (
	SELECT DISTINCT ON (contact_id) * FROM {links} ORDER BY contact_id, ord DESC
), src AS (
	SELECT coalesce(h.contact_id, l.contact_id) AS contact_id,
		-- NormalizeEmail in SQL: ASCII only (lower() of ASCII is ASCII), else no email.
		CASE WHEN btrim(l.email) ~ '^[\x21-\x7e]*$' THEN lower(btrim(l.email)) ELSE '' END AS email, coalesce(l.first_name, '') AS first_name,
		coalesce(l.last_name, '') AS last_name, coalesce(h.contact_lookup_id, '') AS contact_lookup_id,
		coalesce(h.status, '') AS status, h.sent_at, h.opened_at, h.response_started_at, h.response_completed_at,
		coalesce(h.response_id, '') AS response_id,
		coalesce(nullif(l.link, ''), h.survey_link, '') AS respond_link, l.link_expiration,
		coalesce(l.unsubscribed, false) AS unsubscribed, coalesce(l.exceeded, false) AS exceeded,
		coalesce(l.link_expiration, (SELECT link_expiration FROM dist), (SELECT end_date FROM dist)) AS expires_at
	FROM h FULL JOIN l ON l.contact_id = h.contact_id
), old AS (
	SELECT r.contact_id, r.status, r.unannounced FROM recipients r JOIN src USING (contact_id)
	WHERE r.integration_id = $1 AND r.distribution_id = $2
), up AS (
	INSERT INTO recipients AS r (integration_id, distribution_id, contact_id, survey_id, email, first_name, last_name,
		contact_lookup_id, status, sent_at, opened_at, response_started_at, response_completed_at, response_id,
		respond_link, link_expiration, unsubscribed, exceeded_contact_frequency, expires_at, synced_at, created_at, updated_at)
	SELECT $1, $2, contact_id, $3, email, first_name, last_name, contact_lookup_id, status, sent_at, opened_at,
		response_started_at, response_completed_at, response_id, respond_link, link_expiration, unsubscribed, exceeded,
		expires_at, $4, $4, $4
	FROM src
	ON CONFLICT (integration_id, distribution_id, contact_id) DO UPDATE SET
		survey_id = excluded.survey_id, email = excluded.email, first_name = excluded.first_name,
		last_name = excluded.last_name, contact_lookup_id = excluded.contact_lookup_id, status = ` + keptStatus + `,
		sent_at = ` + keptAt("sent_at") + `, opened_at = ` + keptAt("opened_at") + `,
		response_started_at = ` + keptAt("response_started_at") + `,
		response_completed_at = ` + keptAt("response_completed_at") + `, response_id = ` + keptResponseID + `,
		-- An expiry that is missing or could not be read is unknown, not
		-- "never": the one read before stays, else the distribution's, else
		-- the survey's end date apply.
		respond_link = excluded.respond_link, link_expiration = coalesce(excluded.link_expiration, r.link_expiration),
		unsubscribed = excluded.unsubscribed, exceeded_contact_frequency = excluded.exceeded_contact_frequency,
		expires_at = ` + keptExpiry + `, deleted_at = NULL, unlisted_run_id = NULL, unannounced = false,
		synced_at = excluded.synced_at, updated_at = excluded.updated_at
	WHERE (r.survey_id, r.email, r.first_name, r.last_name, r.contact_lookup_id, r.status, r.sent_at, r.opened_at,
		r.response_started_at, r.response_completed_at, r.response_id, r.respond_link, r.link_expiration,
		r.unsubscribed, r.exceeded_contact_frequency, r.expires_at, r.deleted_at IS NULL AND r.unlisted_run_id IS NULL
		AND NOT r.unannounced)
		IS DISTINCT FROM (excluded.survey_id, excluded.email, excluded.first_name, excluded.last_name,
		excluded.contact_lookup_id, ` + keptStatus + `, ` + keptAt("sent_at") + `, ` + keptAt("opened_at") + `,
		` + keptAt("response_started_at") + `, ` + keptAt("response_completed_at") + `, ` + keptResponseID + `,
		excluded.respond_link, coalesce(excluded.link_expiration, r.link_expiration),
		excluded.unsubscribed, excluded.exceeded_contact_frequency, ` + keptExpiry + `, true)
	RETURNING r.contact_id, r.status
), ch AS (
	{insertChanges} SELECT contact_id, kind FROM (
		SELECT up.contact_id, CASE
			WHEN old.contact_id IS NULL THEN
				CASE WHEN up.status IN ` + reachedSQL + ` AND NOT (SELECT is_test FROM dist) THEN 'recipient_delivered' END
			-- Brought to a reached status by an event, never announced.
			WHEN old.unannounced AND up.status IN ` + reachedSQL + ` THEN
				CASE WHEN NOT (SELECT is_test FROM dist) THEN 'recipient_delivered' END
			WHEN old.status = up.status THEN NULL
			WHEN old.status NOT IN ` + reachedSQL + ` AND up.status IN ` + reachedSQL + ` THEN
				CASE WHEN NOT (SELECT is_test FROM dist) THEN 'recipient_delivered' END
			ELSE 'recipient_status' END AS kind
		FROM up LEFT JOIN old USING (contact_id)
	) k WHERE kind IS NOT NULL
	{returningChanges}
), first AS (
	-- The first chunk of changes comes back with the counts, which spares
	-- the usual distribution a round trip to read them.
	SELECT contact_id, kind FROM ch WHERE $5 ORDER BY contact_id {firstLimit}
), cr AS (
	SELECT (SELECT id FROM sync_runs WHERE integration_id = $1 AND status = 'running' LIMIT 1) AS id
), del AS (
	-- Recipients no longer listed. They are never in src, so this touches
	-- none of the rows up writes, and one statement saves a round trip.
	-- During a run they are marked with it, and the run removes them at its
	-- end unless its veto holds them back; outside any run
	-- (tools, tests) they are removed at once.
	UPDATE recipients r SET unlisted_run_id = cr.id, deleted_at = CASE WHEN cr.id IS NULL THEN $4::timestamptz END,
		updated_at = $4
	FROM cr
	WHERE r.integration_id = $1 AND r.distribution_id = $2 AND r.deleted_at IS NULL
	AND (cr.id IS NULL OR r.unlisted_run_id IS DISTINCT FROM cr.id)
	AND {unlisted}
	RETURNING 1
), gone AS (
	-- Recipients marked deleted more than 30 days ago are removed as the
	-- distribution is merged again: retention that costs what the merge
	-- already reads.
	DELETE FROM recipients r
	WHERE r.integration_id = $1 AND r.distribution_id = $2 AND r.deleted_at < $4::timestamptz - interval '30 days'
	AND NOT EXISTS (SELECT 1 FROM src WHERE src.contact_id = r.contact_id)
)
SELECT (SELECT count(*) FROM src), (SELECT count(*) FROM up), (SELECT count(*) FROM ch), (SELECT count(*) FROM del),
	(SELECT array_agg(contact_id ORDER BY contact_id) FROM first), (SELECT array_agg(kind ORDER BY contact_id) FROM first)`

// listedBehind is true when the listed row (excluded) would move the stored
// one (r) backwards: a lower progress rank, and no date newer than the
// stored ones (a listing without any date is never newer).
var listedBehind = `(` + progressSQL("excluded.status") + ` < ` + progressSQL("r.status") + `
	AND coalesce(greatest(excluded.sent_at, excluded.opened_at, excluded.response_started_at, excluded.response_completed_at)
		<= greatest(r.sent_at, r.opened_at, r.response_started_at, r.response_completed_at),
		greatest(excluded.sent_at, excluded.opened_at, excluded.response_started_at, excluded.response_completed_at) IS NULL))`

// keptExpiry is the merged row's effective expiry: the listed link's, else
// the link expiration read before (a missing one is unknown, not "never"),
// else the distribution's or the survey's, as src computed it.
const keptExpiry = `coalesce(excluded.link_expiration, r.link_expiration, excluded.expires_at)`

var (
	keptStatus     = `CASE WHEN ` + listedBehind + ` THEN r.status ELSE excluded.status END`
	keptResponseID = `CASE WHEN ` + listedBehind + ` AND r.response_id <> '' THEN r.response_id ELSE excluded.response_id END`
)

// keptAt is a date of the merged row: the listing's, or, when the listing is
// behind, the later of the stored and the listed one.
func keptAt(col string) string {
	return `CASE WHEN ` + listedBehind + ` THEN greatest(r.` + col + `, excluded.` + col + `) ELSE excluded.` + col + ` END`
}

const (
	changeChunk    = 1000
	changeChunkSQL = "1000"
)

// mergeStagedSQL merges from the staging tables; the changes go to a staging
// table too and come back in chunks.
var mergeStagedSQL = strings.NewReplacer(
	"{history}", "sync_history_stage",
	"{links}", "sync_links_stage",
	"{insertChanges}", "INSERT INTO sync_recipient_changes (contact_id, kind)",
	"{returningChanges}", "RETURNING contact_id, kind",
	"{firstLimit}", "LIMIT "+changeChunkSQL,
	"{unlisted}", `NOT EXISTS (SELECT 1 FROM sync_history_stage h WHERE h.contact_id = r.contact_id)
	AND NOT EXISTS (SELECT 1 FROM sync_links_stage l WHERE l.contact_id = r.contact_id)`,
).Replace(mergeRecipientsTmpl)

// mergeArraysSQL merges a batch held in memory, passed as arrays ($6…$22);
// its changes (at most one per row) all come back at once.
var mergeArraysSQL = strings.NewReplacer(
	"{history}", `unnest($6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[],
		$12::timestamptz[], $13::timestamptz[], $14::timestamptz[]) WITH ORDINALITY
		AS t(contact_id, contact_lookup_id, status, survey_link, response_id, sent_at, opened_at,
		response_started_at, response_completed_at, ord)`,
	"{links}", `unnest($15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::timestamptz[],
		$21::boolean[], $22::boolean[]) WITH ORDINALITY
		AS t(contact_id, email, first_name, last_name, link, link_expiration, unsubscribed, exceeded, ord)`,
	"{insertChanges}", "",
	"{returningChanges}", "",
	"{firstLimit}", "",
	"{unlisted}", "NOT EXISTS (SELECT 1 FROM src WHERE src.contact_id = r.contact_id)",
).Replace(mergeRecipientsTmpl)

func timeArray(n int, at func(int) time.Time) []*time.Time {
	out := make([]*time.Time, n)
	for i := range out {
		if t := at(i); !t.IsZero() {
			out[i] = &t
		}
	}
	return out
}

// mergeArgs are the arguments of mergeArraysSQL after the first five.
func (b *RecipientBatch) mergeArgs() []any {
	h, l := b.history, b.links
	hc, hl, hs, hsl, hr := make([]string, len(h)), make([]string, len(h)), make([]string, len(h)), make([]string, len(h)), make([]string, len(h))
	for i := range h {
		hc[i], hl[i], hs[i], hsl[i], hr[i] = h[i].ContactID, h[i].ContactLookupID, h[i].Status, h[i].SurveyLink, h[i].ResponseID
	}
	lc, le, lf, ll, lk := make([]string, len(l)), make([]string, len(l)), make([]string, len(l)), make([]string, len(l)), make([]string, len(l))
	lu, lx := make([]bool, len(l)), make([]bool, len(l))
	for i := range l {
		lc[i], le[i], lf[i], ll[i], lk[i] = l[i].ContactID, l[i].Email, l[i].FirstName, l[i].LastName, l[i].Link
		lu[i], lx[i] = l[i].Unsubscribed, l[i].ExceededContactFrequency
	}
	return []any{hc, hl, hs, hsl, hr,
		timeArray(len(h), func(i int) time.Time { return h[i].SentAt }),
		timeArray(len(h), func(i int) time.Time { return h[i].OpenedAt }),
		timeArray(len(h), func(i int) time.Time { return h[i].ResponseStartedAt }),
		timeArray(len(h), func(i int) time.Time { return h[i].ResponseCompletedAt }),
		lc, le, lf, ll, lk,
		timeArray(len(l), func(i int) time.Time { return l[i].LinkExpiration }),
		lu, lx}
}

// mergePlan, when set (tests), is handed the plan of each merge, run with
// EXPLAIN ANALYZE in a savepoint rolled back just before the merge itself.
var mergePlan func(plan []byte)

func (b *RecipientBatch) explain(ctx context.Context, sql string, args []any) error {
	if _, err := b.tx.Exec(ctx, `SAVEPOINT explain_merge`); err != nil {
		return mapErr("explain merge", err)
	}
	var plan []byte
	if err := b.tx.QueryRow(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) `+sql, args...).Scan(&plan); err != nil {
		return mapErr("explain merge", err)
	}
	if _, err := b.tx.Exec(ctx, `ROLLBACK TO SAVEPOINT explain_merge`); err != nil {
		return mapErr("explain merge", err)
	}
	mergePlan(plan)
	return nil
}

// Merge joins the staged pages and merges them into recipients as of now.
// Recipients of the distribution that were not staged are marked deleted, so
// call it only after the whole history and links were read. fn, when not nil,
// receives the changes in chunks of at most 1000, inside the transaction.
// recipient_delivered is never reported for a TestEmail distribution.
func (b *RecipientBatch) Merge(ctx context.Context, now time.Time, fn func([]Change) error) (RecipientMerge, error) {
	var m RecipientMerge
	var ids, kinds []string
	sql, args := mergeStagedSQL, []any{b.integrationID, b.distributionID, b.surveyID, now, fn != nil}
	if !b.staged {
		sql, args = mergeArraysSQL, append(args, b.mergeArgs()...)
	} else {
		// A staged distribution is large, and the planner's statistics may
		// not know it yet (a distribution read for the first time, a table
		// analysed before it grew): from an estimate of one stored row it
		// checks each stored recipient against every staged row, which is
		// quadratic (19 s for an unchanged distribution of 20,000
		// recipients, half an hour at 200,000; BenchmarkStagedMerge). Its
		// joins are hashed whatever the estimates say, for this statement
		// only: the rules that run after it in the transaction probe indexes.
		if _, err := b.tx.Exec(ctx, `SET LOCAL enable_nestloop = off`); err != nil {
			return m, mapErr("merge recipients", err)
		}
	}
	if mergePlan != nil {
		if err := b.explain(ctx, sql, args); err != nil {
			return m, err
		}
	}
	err := b.tx.QueryRow(ctx, sql, args...).Scan(&m.Recipients, &m.Changed, &m.Changes, &m.Deleted, &ids, &kinds)
	if err != nil {
		return m, mapErr("merge recipients", err)
	}
	if b.staged {
		if _, err := b.tx.Exec(ctx, `SET LOCAL enable_nestloop = on`); err != nil {
			return m, mapErr("merge recipients", err)
		}
	}
	if fn == nil || m.Changes == 0 {
		return m, nil
	}
	if len(ids) == 0 || len(ids) != len(kinds) || (!b.staged && len(ids) != m.Changes) {
		return m, mapErr("merge recipients: changes", errors.New("the first chunk of changes is missing"))
	}
	first := make([]Change, len(ids))
	for i := range ids {
		first[i] = Change{SurveyID: b.surveyID, DistributionID: b.distributionID, ContactID: ids[i], Kind: kinds[i]}
	}
	if !b.staged {
		// All the changes came back: hand them over in chunks.
		for len(first) > 0 {
			n := min(len(first), changeChunk)
			if err := fn(first[:n]); err != nil {
				return m, err
			}
			first = first[n:]
		}
		return m, nil
	}
	if err := fn(first); err != nil {
		return m, err
	}
	if len(first) < changeChunk {
		return m, nil
	}
	after := first[len(first)-1].ContactID
	for {
		rows, err := b.tx.Query(ctx, `SELECT contact_id, kind FROM sync_recipient_changes
			WHERE contact_id > $1 ORDER BY contact_id LIMIT $2`, after, changeChunk)
		if err != nil {
			return m, mapErr("merge recipients: changes", err)
		}
		chunk, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Change, error) {
			c := Change{SurveyID: b.surveyID, DistributionID: b.distributionID}
			err := r.Scan(&c.ContactID, &c.Kind)
			return c, err
		})
		if err != nil {
			return m, mapErr("merge recipients: changes", err)
		}
		if len(chunk) == 0 {
			return m, nil
		}
		if err := fn(chunk); err != nil {
			return m, err
		}
		if len(chunk) < changeChunk {
			return m, nil
		}
		after = chunk[len(chunk)-1].ContactID
	}
}

// SetRecipientsSyncedTx records that a distribution's recipients were read
// (warning says what was missing, e.g. no history without a licence).
func SetRecipientsSyncedTx(ctx context.Context, tx pgx.Tx, integrationID, distributionID, warning string, now time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE distributions SET recipients_synced_at = $3, recipients_warning = $4
		WHERE integration_id = $1 AND qualtrics_id = $2`, integrationID, distributionID, now, warning)
	return mapErr("set recipients synced", err)
}

// StoredRecipient is a recipient row as the sync left it (tests, tools).
type StoredRecipient struct {
	DistributionID      string
	ContactID           string
	SurveyID            string
	Email               string
	FirstName           string
	LastName            string
	ContactLookupID     string
	Status              string
	RespondLink         string
	ResponseID          string
	SentAt              *time.Time
	ResponseCompletedAt *time.Time
	LinkExpiration      *time.Time
	Unsubscribed        bool
	DeletedAt           *time.Time
}

// ListStoredRecipients returns the recipient rows of one distribution, by contact.
func (s *Store) ListStoredRecipients(ctx context.Context, integrationID, distributionID string) ([]StoredRecipient, error) {
	rows, err := s.pool.Query(ctx, `SELECT distribution_id, contact_id, survey_id, email, first_name, last_name,
		contact_lookup_id, status, respond_link, response_id, sent_at, response_completed_at, link_expiration, unsubscribed, deleted_at
		FROM recipients WHERE integration_id = $1 AND distribution_id = $2 ORDER BY contact_id`, integrationID, distributionID)
	if err != nil {
		return nil, mapErr("list stored recipients", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StoredRecipient, error) {
		var v StoredRecipient
		err := r.Scan(&v.DistributionID, &v.ContactID, &v.SurveyID, &v.Email, &v.FirstName, &v.LastName, &v.ContactLookupID,
			&v.Status, &v.RespondLink, &v.ResponseID, &v.SentAt, &v.ResponseCompletedAt, &v.LinkExpiration, &v.Unsubscribed, &v.DeletedAt)
		return v, err
	})
	return out, mapErr("list stored recipients", err)
}

// KeepStoredHistory stages the stored status and dates of the distribution's
// recipients in place of a history the API refused (404 without an XM
// Directory licence), so links alone do not blank them.
func (b *RecipientBatch) KeepStoredHistory(ctx context.Context) error {
	if err := b.stage(ctx); err != nil {
		return err
	}
	_, err := b.tx.Exec(ctx, `INSERT INTO sync_history_stage (ord, contact_id, contact_lookup_id, status, survey_link,
		response_id, sent_at, opened_at, response_started_at, response_completed_at)
		SELECT -1, contact_id, contact_lookup_id, status, '', response_id, sent_at, opened_at, response_started_at, response_completed_at
		FROM recipients WHERE integration_id = $1 AND distribution_id = $2 AND deleted_at IS NULL`, b.integrationID, b.distributionID)
	return mapErr("stage stored history", err)
}
