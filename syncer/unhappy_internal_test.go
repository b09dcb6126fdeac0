package syncer

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/microapps/microapps/qualtrics"
	"github.com/microapps/microapps/store"
)

// Issue 29.5: a value the database refuses fails the unit (the same row
// fails the same way on every retry); a lost connection does not.
func TestDataErrorsAreUnitFailures(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("merge: %w", &pgconn.PgError{Code: "22021"}), true}, // a NUL byte, invalid UTF-8
		{fmt.Errorf("merge: %w", &pgconn.PgError{Code: "22007"}), true}, // an invalid date
		{fmt.Errorf("merge: %w", &pgconn.PgError{Code: "23502"}), true}, // not null
		{fmt.Errorf("upsert: %w", store.ErrConflict), true},
		{fmt.Errorf("merge: %w", &pgconn.PgError{Code: "57P01"}), false}, // admin shutdown
		{errors.New("connection reset"), false},
	} {
		if got := isDataError(tc.err); got != tc.want {
			t.Errorf("isDataError(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// Issue 29.5: a slice that failed on the database is retried within a
// minute, however many errors the run met before (River's default waits
// attempts⁴ seconds).
func TestASliceIsRetriedWithinAMinute(t *testing.T) {
	w := &syncWorker{}
	for _, attempt := range []int{1, 4, 25, 400} {
		job := &river.Job[SyncArgs]{JobRow: &rivertype.JobRow{Attempt: attempt}}
		if wait := time.Until(w.NextRetry(job)); wait > time.Minute+time.Second {
			t.Errorf("attempt %d waits %v", attempt, wait)
		}
	}
}

// Issue 29.8: the scheduler has a queue of its own.
func TestTheSchedulerHasItsOwnQueue(t *testing.T) {
	_, opts := scheduleJob()
	if opts == nil || opts.Queue != ScheduleQueue || ScheduleQueue == river.QueueDefault {
		t.Errorf("the scheduler is inserted on %+v", opts)
	}
}

// Issue 29.5: the brand budget failing (a database error inside the rate
// limiter) is not a failure on Qualtrics' side.
func TestALimiterErrorIsNotAQualtricsFailure(t *testing.T) {
	err := qfail("history of EMD_1: %w", &qualtrics.LimiterError{Endpoint: qualtrics.EndpointDistributionsHistory, Err: errors.New("connection refused")})
	if isSyncFailure(err) {
		t.Error("a limiter error counts as a Qualtrics failure")
	}
	if !isSyncFailure(qfail("history of EMD_1: %w", errors.New("504"))) {
		t.Error("a Qualtrics failure is not one")
	}
}
