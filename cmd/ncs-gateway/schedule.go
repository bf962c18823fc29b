package main

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// maxRefreshGap is the longest Agora lets pass between two reads of the NCS
// IP list: the addresses change on a cycle of about 24 hours.
const maxRefreshGap = 24 * time.Hour

// cronParser reads ncs.schedule: five standard fields or a descriptor such as
// "@every 1h" or "@daily", with an optional CRON_TZ= prefix.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// checkSchedule parses spec and rejects it if it can leave more than maxGap
// between two runs at any point of the coming year (daylight-saving shifts,
// short months and weekdays included).
func checkSchedule(spec string, maxGap time.Duration) error {
	sched, err := cronParser.Parse(spec)
	if err != nil {
		return fmt.Errorf("%q is not a cron spec: %v", spec, err)
	}
	if every, ok := sched.(cron.ConstantDelaySchedule); ok {
		if every.Delay > maxGap {
			return fmt.Errorf("%q leaves %s between refreshes; Agora changes its IPs about every 24h, so refresh at least every %s", spec, every.Delay, maxGap)
		}
		return nil
	}
	if gap, at := longestGap(sched, time.Now(), maxGap); gap > maxGap {
		return fmt.Errorf("%q leaves %s between refreshes (after %s); refresh at least every %s", spec, gap.Round(time.Minute), at.Format(time.RFC3339), maxGap)
	}
	return nil
}

// longestGap finds a gap between consecutive runs of sched longer than
// limit within a year from start, if there is one, and returns it with the
// run that opens it; otherwise it returns the longest gap it measured.
//
// Walking every run of a once-a-minute schedule for a year is half a million
// steps, so it probes on an hourly grid instead: a gap longer than limit
// shows at some probe as a wait longer than limit-1h, and only then are the
// runs around that probe walked one by one to measure the gap exactly.
func longestGap(sched cron.Schedule, start time.Time, limit time.Duration) (time.Duration, time.Time) {
	const probeStep = time.Hour
	end := start.AddDate(1, 0, 7)
	var longest time.Duration
	var longestAt time.Time
	for t := start; t.Before(end); t = t.Add(probeStep) {
		if sched.Next(t).Sub(t) <= limit-probeStep {
			continue
		}
		// Walk the runs from well before this probe to well after it.
		from, to := t.Add(-limit-probeStep), t.Add(limit+probeStep)
		prev := sched.Next(from)
		if prev.IsZero() {
			return end.Sub(from), from // the schedule never runs again
		}
		if gap := prev.Sub(from); gap > limit {
			return gap, from // at least this long without a run
		}
		for prev.Before(to) {
			next := sched.Next(prev)
			if next.IsZero() {
				return end.Sub(prev), prev
			}
			if gap := next.Sub(prev); gap > longest {
				longest, longestAt = gap, prev
			}
			prev = next
		}
		if longest > limit {
			return longest, longestAt
		}
	}
	return longest, longestAt
}
