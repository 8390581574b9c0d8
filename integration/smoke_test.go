package integration

import (
	"net/http"
	"testing"

	"github.com/pulpo/pulpo/integration/harness"
)

// TestStatus starts a server and reads its status: the smallest proof that
// the binary builds, migrates, listens and answers.
func TestStatus(t *testing.T) {
	t.Parallel()
	srv := harness.Start(t, harness.Options{})
	status := srv.JSON(t, http.MethodGet, "status/", nil, http.StatusOK)
	if _, ok := status["versions"]; !ok {
		t.Fatalf("status has no versions: %v", status)
	}
}
