package store

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
)
