package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ncs-gateway/ncs-gateway/test/testenv"
)

// dashboardPath is the shipped Grafana dashboard, relative to this package.
const dashboardPath = "../../configs/grafana/ncs-gateway.json"

// grafanaDashboard is the part of Grafana's classic dashboard model the
// tests read.
type grafanaDashboard struct {
	SchemaVersion int            `json:"schemaVersion"`
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// grafanaPanel is a panel or a row (whose panels are nested when collapsed).
type grafanaPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

// dashboardQuery is one target's query, named for messages.
type dashboardQuery struct {
	panel, refID, expr string
}

func loadDashboard(t *testing.T) grafanaDashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	return d
}

// dashboardQueries returns every panel's every query, Grafana's variables
// substituted, and checks the structure Grafana's import needs.
func dashboardQueries(t *testing.T, d grafanaDashboard) []dashboardQuery {
	t.Helper()
	if d.SchemaVersion == 0 || d.UID == "" || d.Title == "" {
		t.Errorf("dashboard: got schemaVersion %d, uid %q, title %q; want all set", d.SchemaVersion, d.UID, d.Title)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	for name, typ := range map[string]string{"datasource": "datasource", "job": "query", "instance": "query"} {
		if vars[name] != typ {
			t.Errorf("templating variable %q: got type %q, want %q", name, vars[name], typ)
		}
	}
	var out []dashboardQuery
	ids := map[int]string{}
	panels, rows := 0, 0
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if prev, dup := ids[p.ID]; dup {
				t.Errorf("panel id %d: used by %q and %q, want unique", p.ID, prev, p.Title)
			}
			ids[p.ID] = p.Title
			if p.Type == "row" {
				rows++
				walk(p.Panels)
				continue
			}
			panels++
			if p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
				t.Errorf("panel %q: got datasource %q and %d queries, want ${datasource} and at least one", p.Title, p.Datasource.UID, len(p.Targets))
			}
			for _, tg := range p.Targets {
				if !strings.Contains(tg.Expr, `instance=~"$instance"`) || !strings.Contains(tg.Expr, `job=~"$job"`) {
					t.Errorf("panel %q query %s: got %q, want every selector filtered by $job and $instance", p.Title, tg.RefID, tg.Expr)
				}
				out = append(out, dashboardQuery{p.Title, tg.RefID, grafanaSubstitute(t, tg.Expr)})
			}
		}
	}
	walk(d.Panels)
	if panels < 12 || rows < 5 {
		t.Errorf("dashboard: got %d panels in %d rows, want at least 12 in 5 rows", panels, rows)
	}
	return out
}

var grafanaVar = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)|\[\[(\w+)\]\]`)

// grafanaSubstitute replaces the dashboard's variables the way Grafana
// would before sending the query, with values Prometheus accepts.
func grafanaSubstitute(t *testing.T, expr string) string {
	t.Helper()
	values := map[string]string{
		"job": "ncs-gateway", "instance": ".*",
		"__rate_interval": "1m", "__interval": "1m", "__range": "1h",
	}
	return grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		name := strings.Trim(m, "${}[]")
		v, ok := values[name]
		if !ok {
			t.Errorf("query %q: unknown variable %s", expr, m)
		}
		return v
	})
}

// TestDashboardQueriesAreValidPromQL writes every query of the shipped
// dashboard into a rules file as a recording rule, so promtool's parser
// (the one Prometheus runs) judges it.
func TestDashboardQueriesAreValidPromQL(t *testing.T) {
	testenv.RequireTools(t, "promtool")
	queries := dashboardQueries(t, loadDashboard(t))
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	rules := make([]rule, len(queries))
	for i, q := range queries {
		rules[i] = rule{Record: fmt.Sprintf("dashboard:query_%d:%s", i, q.refID), Expr: q.expr}
	}
	// JSON is YAML, and spares quoting the queries by hand.
	b, err := json.MarshalIndent(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("promtool", "check", "rules", path).CombinedOutput()
	if err != nil {
		var names []string
		for i, q := range queries {
			names = append(names, fmt.Sprintf("query_%d = panel %q %s: %s", i, q.panel, q.refID, q.expr))
		}
		t.Fatalf("promtool check rules: %v\n%s\nthe queries:\n%s", err, out, strings.Join(names, "\n"))
	}
	if want := fmt.Sprintf("SUCCESS: %d rules found", len(queries)); !strings.Contains(string(out), want) {
		t.Errorf("promtool check rules: got %q, want %q", out, want)
	}
}

// TestDashboardNamesExportedMetrics starts the built daemon on its embedded
// defaults and checks that every metric each dashboard query names is in
// its /metrics: a renamed metric leaves a panel silently empty otherwise.
func TestDashboardNamesExportedMetrics(t *testing.T) {
	queries := dashboardQueries(t, loadDashboard(t))
	g := newGateway(t, gatewayOptions{})
	g.start()
	// A few families (the stream's peers, the connected server) appear
	// after the first look at the stream; poll until none is missing.
	var missing map[string][]string
	done, _ := testenv.Poll(15*time.Second, 500*time.Millisecond, func() (bool, string) {
		exported, families := scrapeNames(g.get("/metrics"))
		missing = map[string][]string{}
		for _, q := range queries {
			for _, name := range promqlMetricNames(q.expr) {
				if !exported[metricFamily(name, families)] {
					missing[name] = append(missing[name], fmt.Sprintf("%q %s", q.panel, q.refID))
				}
			}
		}
		return len(missing) == 0, ""
	})
	if !done {
		names := make([]string, 0, len(missing))
		for name := range missing {
			names = append(names, name)
		}
		slices.Sort(names)
		var lines []string
		for _, name := range names {
			lines = append(lines, fmt.Sprintf("  %s (panels %s)", name, strings.Join(slices.Compact(missing[name]), ", ")))
		}
		t.Fatalf("metrics the dashboard queries: got %d not in the daemon's /metrics after 15 s, want none:\n%s",
			len(names), strings.Join(lines, "\n"))
	}
}

// scrapeNames returns the series names in a /metrics page, and the family
// names its # TYPE lines declare.
func scrapeNames(page string) (names, families map[string]bool) {
	names, families = map[string]bool{}, map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(page))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				families[f[0]], names[f[0]] = true, true
			}
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names, families
}
