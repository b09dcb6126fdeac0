package store

import "strings"

// Recipient history statuses, as the rules name them (docs/ARCHITECTURE.md).
// An invitation *reached* its recipient when its status is one of reached;
// only then does it raise new_survey and count as active for them. The
// others (Pending, Error, Skipped, Blocked, Failure, SoftBounce, HardBounce,
// Unknown and any status not known yet) are stored and shown to Brand
// Admins, never to the recipient as pending.
var (
	finishedStatuses = []string{"SurveyFinished", "SurveyScreenedOut"}
	// toAnswerStatuses reached the recipient, who has not finished yet.
	toAnswerStatuses = []string{"Success", "Opened", "Complaint", "SurveyStarted", "SurveyPartiallyFinished", "SessionExpired"}
	reachedStatuses  = append(append([]string{}, toAnswerStatuses...), finishedStatuses...)
)

// Reached reports whether a history status says the invitation reached its
// recipient (finished ones included).
func Reached(status string) bool {
	for _, s := range reachedStatuses {
		if s == status {
			return true
		}
	}
	return false
}

// sqlList renders statuses as a parenthesised SQL list of literals. The
// partial indexes of the migrations repeat these lists word for word: the
// planner uses a partial index only when the query states its predicate.
func sqlList(statuses []string) string {
	return "('" + strings.Join(statuses, "', '") + "')"
}

var (
	toAnswerSQL = sqlList(toAnswerStatuses)
	reachedSQL  = sqlList(reachedStatuses)
)

// progressSQL ranks a status along a recipient's progress (Success → Opened →
// Started → partly finished → finished), 0 for every status that is not
// progress (Pending, bounces, failures, unknown ones). The merge never moves a
// recipient to a lower rank unless the listing's row carries a newer
// timestamp than the stored one.
func progressSQL(expr string) string {
	return `CASE ` + expr + ` WHEN 'Success' THEN 1 WHEN 'Complaint' THEN 1 WHEN 'Opened' THEN 2
		WHEN 'SurveyStarted' THEN 3 WHEN 'SurveyPartiallyFinished' THEN 4 WHEN 'SessionExpired' THEN 4
		WHEN 'SurveyFinished' THEN 5 WHEN 'SurveyScreenedOut' THEN 5 ELSE 0 END`
}
