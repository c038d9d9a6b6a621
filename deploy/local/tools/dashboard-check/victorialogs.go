package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// victoriaLogsQuery is the query model of the victoriametrics-logs-datasource plugin (its
// src/types.ts), which the SDK does not ship: without it the strict decoder would accept any
// key in a VictoriaLogs target.
type victoriaLogsQuery struct {
	RefId               string                   `json:"refId"`
	Hide                *bool                    `json:"hide,omitempty"`
	Key                 string                   `json:"key,omitempty"`
	Datasource          *dashboard.DataSourceRef `json:"datasource,omitempty"`
	Expr                string                   `json:"expr"`
	QueryType           string                   `json:"queryType,omitempty"`
	LegendFormat        string                   `json:"legendFormat,omitempty"`
	MaxLines            *int                     `json:"maxLines,omitempty"`
	Step                string                   `json:"step,omitempty"`
	EditorMode          string                   `json:"editorMode,omitempty"`
	Direction           string                   `json:"direction,omitempty"`
	SupportingQueryType string                   `json:"supportingQueryType,omitempty"`
	Field               string                   `json:"field,omitempty"`
}

var victoriaLogsQueryTypes = []string{"", "instant", "stats", "statsRange", "hits"}

func (query victoriaLogsQuery) ImplementsDataqueryVariant() {}

func (query victoriaLogsQuery) DataqueryType() string { return "victoriametrics-logs-datasource" }

func (query victoriaLogsQuery) Equals(other variants.Dataquery) bool {
	return reflect.DeepEqual(query, other)
}

func (query victoriaLogsQuery) Validate() error {
	var errs cog.BuildErrors
	if query.Expr == "" {
		errs = append(errs, &cog.BuildError{Path: "expr", Message: "must not be empty"})
	}
	known := false
	for _, queryType := range victoriaLogsQueryTypes {
		known = known || query.QueryType == queryType
	}
	if !known {
		errs = append(errs, &cog.BuildError{
			Path:    "queryType",
			Message: fmt.Sprintf("%q is none of %q", query.QueryType, victoriaLogsQueryTypes[1:]),
		})
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func registerVictoriaLogs() {
	lenient := func(raw []byte) (variants.Dataquery, error) {
		var query victoriaLogsQuery
		err := json.Unmarshal(raw, &query)
		return query, err
	}
	strict := func(raw []byte) (variants.Dataquery, error) {
		var query victoriaLogsQuery
		decoder := json.NewDecoder(bytes.NewReader(raw))
		decoder.DisallowUnknownFields()
		// Dashboard.Validate validates every target: not here as well.
		if err := decoder.Decode(&query); err != nil {
			return nil, err
		}
		return query, nil
	}
	cog.NewRuntime().RegisterDataqueryVariant(variants.DataqueryConfig{
		Identifier:                 "victoriametrics-logs-datasource",
		DataqueryUnmarshaler:       lenient,
		StrictDataqueryUnmarshaler: strict,
	})
}
