package store

import "time"

// SetMemRecipientRows sets how many rows a RecipientBatch holds in memory
// (0: stage everything) and returns a function that restores it.
func SetMemRecipientRows(n int) (restore func()) {
	old := memRecipientRows.Swap(int64(n))
	return func() { memRecipientRows.Store(old) }
}

// The statements of every rule and page, for the EXPLAIN test.
var (
	RaiseNewSurveySQL            = raiseNewSurveySQL
	RaiseExpiringSQL             = raiseExpiringSQL
	RaiseStatisticsSQL           = raiseStatisticsSQL
	MyActiveSurveysAndSummarySQL = myActiveSurveysAndSummarySQL
	MySurveyDetailSQL            = mySurveyDetailSQL
	FeedSQL                      = feedSQL
	FeedLinksSQL                 = feedLinksSQL
	UserSummarySQL               = userSummarySQL
	SurveyResultSQL              = surveyResultSQL
	SurveyDistributionsSQL       = surveyDistributionsSQL
	SurveyRecipientsSQL          = surveyRecipientsSQL
	SurveyRecipientsBeforeSQL    = surveyRecipientsBeforeSQL
	OpenSurveysCountSQL          = openSurveysCountSQL
	DistributionHistorySQL       = distributionHistorySQL
	OpenSurveysSQL               = openSurveysSQL
	PurgeNotificationsSQL        = purgeNotificationsSQL
	OutboxOldestSQL              = outboxOldestSQL
)

// The admin reads, for their EXPLAIN test.
var (
	NewestRunsSQL       = newestRunsSQL
	AuditSQL            = auditSQL
	IntegrationAuditSQL = integrationAuditSQL
	HealthRowsSQL       = healthRowsSQL
	HealthJobsSQL       = healthJobsSQL
	HealthBudgetsSQL    = healthBudgetsSQL
	SyncRunsSQL         = syncRunsSQL
)

// The statements the sync, the merge and the purges write with, for the
// EXPLAIN test of writes.
var (
	UpsertDistributionsSQL       = upsertDistributionsSQL
	InheritExpirySQL             = inheritExpirySQL
	SetSurveyDetailsSQL          = setSurveyDetailsSQL
	MergeArraysSQL               = mergeArraysSQL
	PurgeSyncRunsSQL             = purgeSyncRunsSQL
	PurgeDeletedDistributionsSQL = purgeDeletedDistributionsSQL
	RemovedRecipientsSQL         = removedRecipientsSQL
	LiveRecipientsUpToSQL        = liveRowsUpToSQL("recipients")
	UnseenSurveysSQL             = unseenSurveysSQL
	UnseenDistributionsSQL       = unseenDistributionsSQL
	HistoryUnavailableSampleSQL  = historyUnavailableSampleSQL
	ResumeRecipientsUnitsSQL     = resumeRecipientsUnitsSQL
	DropStaleResumesSQL          = dropStaleResumesSQL
	DeleteSyncStageHistorySQL    = `DELETE FROM sync_stage_history t WHERE t.run_id = $1` + keptOfRun
)

// MergeArrayArgs are the arguments of MergeArraysSQL for a batch held in memory.
func MergeArrayArgs(integrationID, distributionID, surveyID string, now time.Time, report bool, h []HistoryInput, l []LinkInput) []any {
	b := &RecipientBatch{integrationID: integrationID, distributionID: distributionID, surveyID: surveyID, history: h, links: l}
	return append([]any{integrationID, distributionID, surveyID, now, report}, b.mergeArgs()...)
}

// MergeStagedSQL is the merge of a staged distribution.
var MergeStagedSQL = mergeStagedSQL

// SetMergePlan hands the plan of each merge to fn until restore is called;
// tests that set it must not run in parallel with other merges.
func SetMergePlan(fn func(plan []byte)) (restore func()) {
	old := mergePlan
	mergePlan = fn
	return func() { mergePlan = old }
}
