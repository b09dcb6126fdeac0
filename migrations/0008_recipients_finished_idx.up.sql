-- My active surveys hides a survey once the user finished it through any
-- invitation. The check looks up the user's finished rows by email and survey;
-- without this index it walked every recipient of the survey's distributions.
CREATE INDEX recipients_finished_idx ON recipients (email, integration_id, survey_id)
    WHERE deleted_at IS NULL AND status IN ('SurveyFinished', 'SurveyScreenedOut');
