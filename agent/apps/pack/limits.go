package pack

// Resource limits and alerts: the manifest's "limits" and "alerts" keys,
// and the system alert file (<root>/conf/alerts.json), which share the
// rule format. The monitor (agent/apps/monitor) and the runner apply them;
// this file only reads and checks them.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"osmanager/agent/apps/apperr"
)

// ResourceLimits is the manifest's "limits": caps applied to each run's cgroup
// (memory.max, cpu.max, pids.max). Zero fields are no cap. Soft means
// "apply them where the host can, run without them where it cannot";
// without Soft an app with limits is refused on a host that cannot apply
// them.
type ResourceLimits struct {
	Memory Size    `json:"memory,omitempty"` // bytes: "256M" or a number
	CPU    float64 `json:"cpu,omitempty"`    // cores: 0.5 is half of one core
	Pids   int64   `json:"pids,omitempty"`
	Soft   bool    `json:"soft,omitempty"`
}

// UnmarshalJSON reads the limits, naming the key a bad value is at.
func (l *ResourceLimits) UnmarshalJSON(b []byte) error {
	type plain ResourceLimits
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode((*plain)(l)); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("\"limits.%s\": want %s, not %s", te.Field, te.Type, te.Value)
		}
		return fmt.Errorf("\"limits.memory\": %w", err) // the one field with a parser of its own
	}
	return nil
}

// Bounds of a limit.
const (
	minMemoryLimit = 1 << 20 // below a MiB nothing starts; a typo ("256" for "256M")
	maxCPULimit    = 1024
	maxPidsLimit   = 1 << 22
	maxHold        = 24 * time.Hour
)

// Empty reports whether no cap is set.
func (l *ResourceLimits) Empty() bool {
	return l == nil || (l.Memory == 0 && l.CPU == 0 && l.Pids == 0)
}

func (l *ResourceLimits) check() error {
	if l == nil {
		return nil
	}
	switch {
	case l.Memory != 0 && l.Memory < minMemoryLimit:
		return bad(`"limits.memory" %d bytes: want at least 1M (a size such as "256M")`, l.Memory)
	case l.CPU < 0 || l.CPU > maxCPULimit || math.IsNaN(l.CPU):
		return bad(`"limits.cpu" %g: want cores above 0 and at most %d (0.5 is half a core)`, l.CPU, maxCPULimit)
	case l.CPU != 0 && l.CPU < 0.01:
		return bad(`"limits.cpu" %g: want at least 0.01 (1%% of one core)`, l.CPU)
	case l.Pids < 0 || l.Pids > maxPidsLimit:
		return bad(`"limits.pids" %d: want 1 to %d`, l.Pids, maxPidsLimit)
	case l.Empty():
		return bad(`"limits": no memory, cpu or pids given`)
	}
	return nil
}

// Size is a byte count written in JSON as a number or a string with a
// binary unit: "512", "64K", "256M", "1.5G", "2T" (K, M, G, T are powers
// of 1024; "KB", "KiB", "MB", "MiB", … mean the same; a "B" alone is
// bytes).
type Size int64

// UnmarshalJSON reads a number or a size string.
func (s *Size) UnmarshalJSON(b []byte) error {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return errors.New("want a size such as \"256M\" or a number of bytes")
	}
	var str string
	switch x := v.(type) {
	case json.Number:
		str = x.String()
	case string:
		str = x
	default:
		return errors.New("want a size such as \"256M\" or a number of bytes")
	}
	n, err := ParseSize(str)
	if err != nil {
		return err
	}
	*s = Size(n)
	return nil
}

// MarshalJSON writes the number of bytes.
func (s Size) MarshalJSON() ([]byte, error) { return strconv.AppendInt(nil, int64(s), 10), nil }

// ParseSize reads a size: a non-negative decimal number with an optional
// binary unit (K, M, G, T; KB/KiB, …; B). The result fits an int64.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	num := strings.TrimRightFunc(t, func(r rune) bool { return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' })
	unit := strings.ToUpper(t[len(num):])
	num = strings.TrimSpace(num)
	mult := map[string]float64{"": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MB": 1 << 20, "MIB": 1 << 20,
		"G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30, "T": 1 << 40, "TB": 1 << 40, "TIB": 1 << 40}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("size %q: unknown unit %q (want K, M, G or T)", clip(s), clip(unit))
	}
	if num == "" || strings.ContainsAny(num, "+-eEnNxX_") {
		return 0, fmt.Errorf("size %q: want a number such as \"256M\"", clip(s))
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("size %q: want a number such as \"256M\"", clip(s))
	}
	v := f * mult
	if v >= math.MaxInt64/2 {
		return 0, fmt.Errorf("size %q: too large", clip(s))
	}
	return int64(v), nil
}

// Threshold is an alert's "above": a number, or a string: a size
// ("200M", for bytes) or a percentage ("90%"). Which unit a metric wants
// is Metric's business: see AppMetrics and SystemMetrics.
type Threshold struct {
	Value   float64
	Percent bool // written with a "%"
	Sized   bool // written as a size string with a unit
}

// UnmarshalJSON reads a number or a string.
func (t *Threshold) UnmarshalJSON(b []byte) error {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return errors.New(`want a number, a size such as "200M" or a percentage such as "90%"`)
	}
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil || f < 0 || math.IsInf(f, 0) {
			return fmt.Errorf("threshold %s: want a number at least 0", x)
		}
		*t = Threshold{Value: f}
	case string:
		if p, ok := strings.CutSuffix(strings.TrimSpace(x), "%"); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
			if err != nil || f < 0 || f > 100 || math.IsNaN(f) {
				return fmt.Errorf("threshold %q: want a percentage 0 to 100", clip(x))
			}
			*t = Threshold{Value: f, Percent: true}
			return nil
		}
		n, err := ParseSize(x)
		if err != nil {
			return err
		}
		*t = Threshold{Value: float64(n), Sized: true}
	default:
		return errors.New(`want a number, a size such as "200M" or a percentage such as "90%"`)
	}
	return nil
}

// MarshalJSON writes the value back in the form it was given.
func (t Threshold) MarshalJSON() ([]byte, error) {
	switch {
	case t.Percent:
		return json.Marshal(strconv.FormatFloat(t.Value, 'g', -1, 64) + "%")
	case t.Sized:
		return json.Marshal(strconv.FormatFloat(t.Value, 'f', 0, 64))
	}
	return json.Marshal(t.Value)
}

// Rule is one alert: raised when the metric stays above Above for For,
// cleared when it stays at or below it for For again.
type Rule struct {
	Above Threshold `json:"above"`
	For   Duration  `json:"for,omitempty"`
}

// Alerts are rules by metric name.
type Alerts map[string]Rule

// UnmarshalJSON reads the rules, naming the metric a bad value is for.
func (a *Alerts) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(Alerts, len(raw))
	for name, v := range raw {
		type plain Rule
		var r plain
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return fmt.Errorf("alert %q: %q: want %s, not %s", clip(name), te.Field, te.Type, te.Value)
			}
			return fmt.Errorf("alert %q: %w", clip(name), err)
		}
		out[name] = Rule(r)
	}
	*a = out
	return nil
}

// AppMetrics are the metrics an app's alert may watch, and their units:
// the sum over the app's live runs.
var AppMetrics = map[string]string{
	"cpu":    "percent of one core",
	"memory": "bytes",
	"pids":   "processes",
	"io":     "bytes/s read and written",
	"disk":   "bytes in the app's data dir",
}

// SystemMetrics are the metrics a system alert may watch: cpu (percent
// of all CPUs), memory and disk (percent used; or bytes used when the
// threshold is a size), and net:<interface> (bytes/s received and sent).
var SystemMetrics = []string{"cpu", "memory", "disk", "net:<interface>"}

// CheckAppAlerts checks an app's alert rules; at names the key ("alerts").
func CheckAppAlerts(a Alerts, at string) error {
	for _, name := range slices.Sorted(mapsKeys(a)) {
		r := a[name]
		if _, ok := AppMetrics[name]; !ok {
			return bad(`%q: unknown metric %q (want cpu, memory, pids, io or disk)`, at+"."+name, clip(name))
		}
		if err := r.check(at+"."+name, name == "memory" || name == "io" || name == "disk"); err != nil {
			return err
		}
	}
	return nil
}

// CheckSystemAlerts checks system alert rules.
func CheckSystemAlerts(a Alerts, at string) error {
	for _, name := range slices.Sorted(mapsKeys(a)) {
		r := a[name]
		ifc, isNet := strings.CutPrefix(name, "net:")
		switch {
		case name == "cpu", name == "memory", name == "disk":
		case isNet && validIfName(ifc):
		default:
			return bad(`%q: unknown system metric %q (want cpu, memory, disk or net:<interface>)`, at+"."+name, clip(name))
		}
		if err := r.check(at+"."+name, isNet); err != nil {
			return err
		}
		if name == "cpu" && r.Above.Sized {
			return bad(`%q: cpu is a percentage, not a size`, at+"."+name)
		}
		if (name == "memory" || name == "disk") && !r.Above.Sized && r.Above.Value > 100 {
			return bad(`%q: %g: a percentage is at most 100 (or give a size such as "2G")`, at+"."+name, r.Above.Value)
		}
	}
	return nil
}

func (r Rule) check(at string, sized bool) error {
	switch {
	case r.For < 0 || r.For.D() > maxHold:
		return bad(`%q: "for" %v: want 0 to %v`, at, r.For.D(), maxHold)
	case r.Above.Percent && sized:
		return bad(`%q: a percentage does not fit this metric; give a number or a size`, at)
	}
	return nil
}

// validIfName is a Linux interface name: 1 to 15 bytes, no '/', ':',
// space or control byte.
func validIfName(s string) bool {
	if len(s) == 0 || len(s) > 15 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; c <= ' ' || c == '/' || c == ':' || c >= 0x7f {
			return false
		}
	}
	return true
}

func mapsKeys(a Alerts) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range a {
			if !yield(k) {
				return
			}
		}
	}
}

// AlertFile is the system alert file: system rules, and rules for apps
// by id (added to, and overriding by metric, their manifests').
type AlertFile struct {
	System Alerts            `json:"system,omitempty"`
	Apps   map[string]Alerts `json:"apps,omitempty"`
}

var alertFileType = reflect.TypeFor[AlertFile]()

// MaxAlertFile caps the system alert file.
const MaxAlertFile = 64 << 10

// ParseAlertFile reads the system alert file strictly (unknown keys,
// keys given twice, unknown metrics are refused by name). What is wrong
// is all returned, joined; the rules that are right are kept, so one bad
// entry does not disarm the others.
func ParseAlertFile(data []byte) (AlertFile, error) {
	if len(data) > MaxAlertFile {
		return AlertFile{}, apperr.New(apperr.TooLarge, fmt.Sprintf("alerts: over %d bytes", MaxAlertFile))
	}
	if err := walkValue(json.NewDecoder(bytes.NewReader(data)), alertFileType, "", 0); err != nil {
		return AlertFile{}, relabel(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f AlertFile
	if err := dec.Decode(&f); err != nil {
		return AlertFile{}, apperr.New(apperr.BadRequest, "alerts: "+jsonError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return AlertFile{}, apperr.New(apperr.BadRequest, "alerts: data after the JSON object")
	}
	var errs []error
	for name, r := range f.System {
		if err := CheckSystemAlerts(Alerts{name: r}, "system"); err != nil {
			errs = append(errs, relabel(err))
			delete(f.System, name)
		}
	}
	for id, a := range f.Apps {
		if !ValidID(id) {
			errs = append(errs, apperr.New(apperr.BadRequest, fmt.Sprintf("alerts: %q: not an app id", "apps."+clip(id))))
			delete(f.Apps, id)
			continue
		}
		for name, r := range a {
			if err := CheckAppAlerts(Alerts{name: r}, "apps."+id); err != nil {
				errs = append(errs, relabel(err))
				delete(a, name)
			}
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return f, errors.Join(errs...)
}

// relabel makes a "manifest: …" error an "alerts: …" one.
func relabel(err error) error {
	var e *apperr.Error
	if errors.As(err, &e) {
		return apperr.New(e.Code, "alerts: "+strings.TrimPrefix(e.Msg, "manifest: "))
	}
	return err
}
