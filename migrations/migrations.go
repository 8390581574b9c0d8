// Package migrations holds Pulpo's numbered SQL migrations, embedded into the
// binary. The runner lives in host/db; files are applied in lexical order, so
// numbers are zero-padded: 0001_name.up.sql.
package migrations

import "embed"

// FS holds every *.sql file of this folder.
//
//go:embed *.sql
var FS embed.FS
