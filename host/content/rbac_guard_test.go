package content

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
)

type fakeDownloads map[uuid.UUID]bool

func (f fakeDownloads) MayDownload(_ context.Context, guard uuid.UUID) (bool, error) {
	if guard == uuid.Nil {
		return false, errors.New("database down")
	}
	return f[guard], nil
}

func TestRBACGuard(t *testing.T) {
	t.Parallel()
	allowed, denied := uuid.New(), uuid.New()
	check := fakeDownloads{allowed: true}
	r := httptest.NewRequest("GET", "/pulp/content/x/", nil)
	for _, c := range []struct {
		id        uuid.UUID
		downloads DownloadChecker
		ok        bool
	}{
		{allowed, check, true},
		{denied, check, false},
		{uuid.Nil, check, false}, // an error denies
		{allowed, nil, false},    // no checker: deny
	} {
		err := parseGuardWith(db.ContentGuard{ID: c.id, Name: "g", PulpType: "core.rbac"}, c.downloads).permit(r)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, errDenied)) {
			t.Errorf("guard %v (checker %v): %v, want ok=%v", c.id, c.downloads != nil, err, c.ok)
		}
	}
}
