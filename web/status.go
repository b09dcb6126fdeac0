package web

// Tag is a status shown as a short coloured label with text (never colour
// alone). Tone picks the colour class.
type Tag struct {
	Key   string
	Label string
	Tone  string // neutral, info, progress, success, warning, danger
}

// statusGroup maps a Qualtrics history status to the label users see. The
// statuses are second-hand knowledge, so unknown ones get a neutral tag.
func statusGroup(status string) (key, tone string) {
	switch status {
	case "", "Pending", "Success", "Unknown":
		return "not_started", "neutral"
	case "Opened":
		return "opened", "info"
	case "SurveyStarted":
		return "in_progress", "progress"
	case "SurveyPartiallyFinished":
		return "partial", "progress"
	case "SurveyFinished":
		return "finished", "success"
	case "SurveyScreenedOut":
		return "screened_out", "neutral"
	case "SoftBounce", "HardBounce":
		return "bounced", "danger"
	case "Error", "Failure", "Skipped", "Blocked", "Complaint":
		return "failed", "danger"
	case "SessionExpired":
		return "expired", "warning"
	}
	return "unknown", "neutral"
}

func statusTag(status string, l Lang) Tag {
	key, tone := statusGroup(status)
	return Tag{Key: key, Label: l.T("status." + key), Tone: tone}
}

// filterKeys are the status filters offered on Survey results, in order.
var filterKeys = []string{"not_started", "opened", "in_progress", "partial", "finished", "screened_out", "bounced", "failed", "expired"}

// statusesFor lists the Qualtrics statuses behind a filter key.
func statusesFor(key string) []string {
	all := []string{"Pending", "Success", "Unknown", "Opened", "SurveyStarted", "SurveyPartiallyFinished",
		"SurveyFinished", "SurveyScreenedOut", "SoftBounce", "HardBounce", "Error", "Failure", "Skipped",
		"Blocked", "Complaint", "SessionExpired"}
	var out []string
	for _, s := range all {
		if k, _ := statusGroup(s); k == key {
			out = append(out, s)
		}
	}
	if key == "not_started" {
		out = append(out, "")
	}
	return out
}

func isFinished(status string) bool {
	return status == "SurveyFinished" || status == "SurveyScreenedOut"
}
