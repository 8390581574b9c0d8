// Package integration holds end-to-end tests: each starts the real pulpo
// binary (built once by harness.Main) against its own PostgreSQL database and
// speaks HTTP to it. This file holds the package's only TestMain.
package integration

import (
	"testing"

	"github.com/pulpo/pulpo/integration/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }
