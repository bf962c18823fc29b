package e2e

import (
	"slices"
	"strings"
	"testing"
)

// promqlSkip are the words of PromQL that are not metric names when they
// stand alone: aggregation operators (written before "by" as often as
// before "("), set and comparison keywords, modifiers, and number words.
var promqlSkip = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "offset": true, "and": true, "or": true, "unless": true, "atan2": true,
	"inf": true, "nan": true,
}

// promqlLabelLists are the words followed by a parenthesised list of label
// names, not of expressions.
var promqlLabelLists = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// promqlMetricNames returns the metric names a PromQL expression selects,
// sorted and without repeats. It skips function names (an identifier
// followed by "("), keywords, label matchers inside {}, label lists after
// by/without/on/ignoring/group_left/group_right, ranges and durations
// inside [], numbers, and string literals. Grafana's variables must be
// substituted first.
func promqlMetricNames(expr string) []string {
	var names []string
	isStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isPart := func(c byte) bool { return isStart(c) || c >= '0' && c <= '9' }
	skipTo := func(i int, close byte) int { // i is just past the opener
		for i < len(expr) && expr[i] != close {
			if q := expr[i]; q == '"' || q == '\'' || q == '`' {
				i = skipString(expr, i)
				continue
			}
			i++
		}
		return i + 1
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(expr, i)
		case c == '{':
			i = skipTo(i+1, '}')
		case c == '[':
			i = skipTo(i+1, ']')
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isPart(expr[i]) || expr[i] == '.') {
				i++ // numbers, durations (5m), exponents (1e3), hex
			}
		case isStart(c):
			j := i
			for j < len(expr) && isPart(expr[j]) {
				j++
			}
			word := expr[i:j]
			k := j
			for k < len(expr) && (expr[k] == ' ' || expr[k] == '\t' || expr[k] == '\n') {
				k++
			}
			switch {
			case promqlLabelLists[strings.ToLower(word)] && k < len(expr) && expr[k] == '(':
				j = skipTo(k+1, ')')
			case promqlSkip[strings.ToLower(word)]:
			case k < len(expr) && expr[k] == '(':
				// a function call; its arguments are read on
			default:
				names = append(names, word)
			}
			i = j
		default:
			i++
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// skipString returns the index just past the string literal starting at i.
func skipString(s string, i int) int {
	q := s[i]
	for i++; i < len(s); i++ {
		switch {
		case s[i] == '\\' && q != '`':
			i++
		case s[i] == q:
			return i + 1
		}
	}
	return i
}

// metricFamily maps a histogram's or summary's series name to its family
// (the name /metrics declares in # TYPE) when the family is known.
func metricFamily(name string, families map[string]bool) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && families[base] {
			return base
		}
	}
	return name
}

func TestPromQLMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`sum by (reason) (rate(a_total{job=~"x", reason!="by"}[5m])) > 0`, []string{"a_total"}},
		{`histogram_quantile(0.99, sum by (instance, le) (rate(h_bucket{code="200"}[1m])))`, []string{"h_bucket"}},
		{`rate(cpu{j="a"}[1m]) * on (job, instance) group_left (version) info{j="a"}`, []string{"cpu", "info"}},
		{`max without (peer) (g) offset 5m`, []string{"g"}},
		{`a / ignoring (x) b unless c or d and bool e`, []string{"a", "b", "c", "d", "e"}},
		{`sum(x) by (le)`, []string{"x"}},
		{`label_replace(m, "dst", "$1", "src", "(.*)")`, []string{"m"}},
		{`1e3 * inf + NaN - 0x1f + m:rule:rate5m`, []string{"m:rule:rate5m"}},
		{`topk(3, count_values("v", m))`, []string{"m"}},
	}
	for _, tt := range tests {
		if got := promqlMetricNames(tt.expr); !slices.Equal(got, tt.want) {
			t.Errorf("promqlMetricNames(%q): got %q, want %q", tt.expr, got, tt.want)
		}
	}
	families := map[string]bool{"h": true}
	for name, want := range map[string]string{"h_bucket": "h", "h_count": "h", "x_count": "x_count", "h": "h"} {
		if got := metricFamily(name, families); got != want {
			t.Errorf("metricFamily(%q): got %q, want %q", name, got, want)
		}
	}
}
