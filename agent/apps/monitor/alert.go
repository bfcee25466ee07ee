package monitor

import (
	"time"

	"osmanager/agent/apps/pack"
)

// alarm is one alert rule and where it stands. It is raised once the
// value has stayed above the threshold for the hold time, and cleared
// once it has stayed at or below it for the hold time again: a value
// that crosses back before the hold is out resets the wait, so a value
// hovering at the threshold neither raises nor clears (no flapping).
type alarm struct {
	metric    string
	threshold float64
	hold      time.Duration

	raised  bool
	pending time.Time // when the value went to the other side; zero: it has not
	since   time.Time // when raised
	value   float64   // the value at the last change
}

func newAlarm(metric string, r pack.Rule) *alarm {
	return &alarm{metric: metric, threshold: r.Above.Value, hold: r.For.D()}
}

// step takes a sample and reports whether the alarm was raised or
// cleared by it.
func (a *alarm) step(now time.Time, v float64) bool {
	past := v > a.threshold
	if past == a.raised {
		a.pending = time.Time{}
		return false
	}
	if a.pending.IsZero() {
		a.pending = now
	}
	if now.Sub(a.pending) < a.hold {
		return false
	}
	a.raised, a.pending, a.value = past, time.Time{}, v
	if past {
		a.since = now
	}
	return true
}

// Alert is a raised or cleared alert, as the monitor reports it.
type Alert struct {
	ID        string // the app's id; "" for a system alert
	Metric    string
	Raised    bool // false: cleared
	Value     float64
	Threshold float64
	At        time.Time
	Why       string // for a clear not made by the value: "the app's last run ended"
}
