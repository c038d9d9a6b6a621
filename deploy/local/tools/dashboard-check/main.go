// dashboard-check reads Grafana dashboard JSON files with grafana-foundation-sdk's strict
// decoder and validator, and fails on every finding but the ones Grafana resolves itself.
//
//	dashboard-check FILE...
//
// Strict decoding reports unknown keys (a misspelt "gridPoss" or "exprr" that a lenient reader
// drops silently), values of the wrong type, and broken JSON; Validate reports values out of
// range. Exit status: 0 clean, 1 findings, 2 a file could not be read.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(paths []string, stdout, stderr io.Writer) int {
	if len(paths) == 0 {
		fmt.Fprintln(stderr, "usage: dashboard-check FILE...")
		return 2
	}
	plugins.RegisterDefaultPlugins()
	registerVictoriaLogs()
	status := 0
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", path, err)
			return 2
		}
		findings, tolerated := check(raw)
		for _, finding := range findings {
			fmt.Fprintf(stdout, "%s: %s\n", path, finding)
		}
		if len(findings) > 0 {
			status = 1
		}
		fmt.Fprintf(stdout, "%s: %d findings, %d required fields left to Grafana's defaults\n",
			path, len(findings), tolerated)
	}
	return status
}

// check returns the findings of one dashboard, and how many missing required fields it
// tolerated.
func check(raw []byte) ([]string, int) {
	var strict, lenient dashboard.Dashboard
	var problems []*cog.BuildError
	if err := strict.UnmarshalJSONStrict(raw); err != nil {
		problems = append(problems, buildErrors(err)...)
	}
	// In v0.0.22 the strict decoder drops every panel it decodes (Panel.UnmarshalJSONStrict
	// returns an empty but non-nil error list, on which PanelOrRowPanel gives up), so the
	// values are validated on the lenient decoding of the same file.
	if err := json.Unmarshal(raw, &lenient); err == nil {
		if err := lenient.Validate(); err != nil {
			problems = append(problems, buildErrors(err)...)
		}
	}
	var findings []string
	tolerated := 0
	for _, problem := range problems {
		if toleratedByGrafana(problem) {
			tolerated++
			continue
		}
		findings = append(findings, problem.Error())
	}
	return findings, tolerated
}

// toleratedByGrafana says whether a finding is of the one class Grafana handles itself: a
// required field absent from the file, which Grafana fills with its default on load (for
// example a panel option such as legend.showLegend). Everything else is a defect of the file.
func toleratedByGrafana(problem *cog.BuildError) bool {
	return problem.Message == "required field is missing from input"
}

// buildErrors flattens what the SDK returns into its path-and-message errors; a plain error
// (broken JSON) becomes one at the root.
func buildErrors(err error) []*cog.BuildError {
	var many cog.BuildErrors
	if errors.As(err, &many) {
		return many
	}
	var one *cog.BuildError
	if errors.As(err, &one) {
		return []*cog.BuildError{one}
	}
	return []*cog.BuildError{{Path: "(file)", Message: strings.TrimSpace(err.Error())}}
}
