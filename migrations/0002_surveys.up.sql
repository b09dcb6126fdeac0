-- Synced Qualtrics data. Keys are (integration_id, qualtrics_id): Qualtrics ids are
-- unique per brand, and two integrations may see the same brand.
CREATE TABLE surveys (
    integration_id     uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    qualtrics_id       text NOT NULL,
    name               text NOT NULL DEFAULT '',
    owner_id           text NOT NULL DEFAULT '',
    is_active          boolean NOT NULL DEFAULT false,
    creation_date      timestamptz,
    last_modified      timestamptz,
    start_date         timestamptz,
    end_date           timestamptz,
    responses_auditable integer NOT NULL DEFAULT 0,
    responses_generated integer NOT NULL DEFAULT 0,
    responses_deleted   integer NOT NULL DEFAULT 0,
    details_synced_at  timestamptz,
    -- Set by a full sync that read the whole listing and no longer saw the survey.
    deleted_at         timestamptz,
    synced_at          timestamptz NOT NULL DEFAULT now(),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, qualtrics_id)
);

-- Open surveys (Brand Admins): active, not deleted surveys of one integration, by end date.
CREATE INDEX surveys_open_idx ON surveys (integration_id, end_date) WHERE is_active AND deleted_at IS NULL;

CREATE TABLE distributions (
    integration_id         uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    qualtrics_id           text NOT NULL,
    survey_id              text NOT NULL,
    parent_distribution_id text NOT NULL DEFAULT '',
    owner_id               text NOT NULL DEFAULT '',
    organization_id        text NOT NULL DEFAULT '',
    request_status         text NOT NULL DEFAULT '',
    request_type           text NOT NULL DEFAULT '',
    send_date              timestamptz,
    created_date           timestamptz,
    modified_date          timestamptz,
    from_email             text NOT NULL DEFAULT '',
    reply_to_email         text NOT NULL DEFAULT '',
    from_name              text NOT NULL DEFAULT '',
    subject                text NOT NULL DEFAULT '',
    mailing_list_id        text NOT NULL DEFAULT '',
    contact_id             text NOT NULL DEFAULT '',
    library_id             text NOT NULL DEFAULT '',
    sample_id              text NOT NULL DEFAULT '',
    link_type              text NOT NULL DEFAULT '',
    link_expiration        timestamptz,
    sent                   integer NOT NULL DEFAULT 0,
    failed                 integer NOT NULL DEFAULT 0,
    started                integer NOT NULL DEFAULT 0,
    bounced                integer NOT NULL DEFAULT 0,
    opened                 integer NOT NULL DEFAULT 0,
    skipped                integer NOT NULL DEFAULT 0,
    finished               integer NOT NULL DEFAULT 0,
    complaints             integer NOT NULL DEFAULT 0,
    blocked                integer NOT NULL DEFAULT 0,
    -- When history and links were last read; NULL means "never", which an
    -- incremental sync treats as "read them now".
    recipients_synced_at   timestamptz,
    recipients_warning     text NOT NULL DEFAULT '',
    deleted_at             timestamptz,
    synced_at              timestamptz NOT NULL DEFAULT now(),
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, qualtrics_id)
);

-- Survey results lists a survey's distributions, newest first.
CREATE INDEX distributions_survey_idx ON distributions (integration_id, survey_id, send_date DESC);
-- The statistics notification looks for distributions whose link expires within the window.
CREATE INDEX distributions_expiry_idx ON distributions (link_expiration) WHERE deleted_at IS NULL AND link_expiration IS NOT NULL;

-- The history of a distribution's figures, one row each time they changed, for charts.
CREATE TABLE distribution_stats (
    integration_id  uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    distribution_id text NOT NULL,
    at              timestamptz NOT NULL,
    sent            integer NOT NULL,
    failed          integer NOT NULL,
    started         integer NOT NULL,
    bounced         integer NOT NULL,
    opened          integer NOT NULL,
    skipped         integer NOT NULL,
    finished        integer NOT NULL,
    complaints      integer NOT NULL,
    blocked         integer NOT NULL,
    PRIMARY KEY (integration_id, distribution_id, at)
);

-- One row per distribution and contact: status and dates come from the distribution
-- history, email, names and the personal link from the distribution links.
CREATE TABLE recipients (
    integration_id             uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    distribution_id            text NOT NULL,
    contact_id                 text NOT NULL,
    survey_id                  text NOT NULL,
    -- Users are matched by email, trimmed and lower-cased once here.
    email                      text NOT NULL DEFAULT '' CHECK (email = lower(btrim(email))),
    first_name                 text NOT NULL DEFAULT '',
    last_name                  text NOT NULL DEFAULT '',
    contact_lookup_id          text NOT NULL DEFAULT '',
    status                     text NOT NULL DEFAULT '',
    sent_at                    timestamptz,
    opened_at                  timestamptz,
    response_started_at        timestamptz,
    response_completed_at      timestamptz,
    response_id                text NOT NULL DEFAULT '',
    respond_link               text NOT NULL DEFAULT '',
    link_expiration            timestamptz,
    unsubscribed               boolean NOT NULL DEFAULT false,
    exceeded_contact_frequency boolean NOT NULL DEFAULT false,
    deleted_at                 timestamptz,
    synced_at                  timestamptz NOT NULL DEFAULT now(),
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, distribution_id, contact_id)
);

-- My active surveys: every row of one user across all integrations, found by email.
-- Finished rows are left out of the index because the page never shows them.
CREATE INDEX recipients_email_idx ON recipients (email, link_expiration)
    WHERE deleted_at IS NULL AND status NOT IN ('SurveyFinished', 'SurveyScreenedOut');
-- The expiry notification scans recipients whose link expires within the next window.
CREATE INDEX recipients_expiry_idx ON recipients (link_expiration)
    WHERE deleted_at IS NULL AND link_expiration IS NOT NULL;
