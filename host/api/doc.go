// Package api serves Pulp's REST API under /pulp/api/v3/.
//
// One route table drives both the HTTP mux and the OpenAPI document at
// /pulp/api/v3/docs/api.json, so the document cannot drift from what is
// served. Resource shapes follow Pulp 3: pulp_href paths, limit/offset
// pagination with {count, next, previous, results}, Django-style filters,
// fields/exclude_fields, 202 {"task": href} for work done by tasks, and
// DRF-style error bodies naming the offending field.
//
// Typed resources (repositories/<plugin>/<endpoint>/ and the content,
// remote, distribution and publication families) are generated from the
// [Types] the server is given, which the plugin runtime fills from each
// plugin's describe.
package api
