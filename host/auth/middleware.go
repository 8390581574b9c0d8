package auth

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
)

// Middleware authenticates HTTP Basic credentials and puts the user in the
// request's context. Requests without credentials pass on anonymously: the
// handlers decide what anonymous users may do (status/ and the content app
// are public). Wrong credentials are refused with 401 under rejectPrefix
// (the REST API, as DRF does) and ignored elsewhere, as Pulp's content app
// only logs them.
func (a *Authenticator) Middleware(next http.Handler, rejectPrefix string, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		username, password, ok := r.BasicAuth()
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		u, err := a.Authenticate(r.Context(), username, password)
		if err != nil {
			if strings.HasPrefix(r.URL.Path, rejectPrefix) {
				if !errors.Is(err, ErrBadCredentials) {
					log.ErrorContext(r.Context(), "authentication failed", "err", err)
					http.Error(w, `{"detail":"Internal server error."}`, http.StatusInternalServerError)
					return
				}
				Unauthorized(w, "Invalid username/password.")
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithUser(r.Context(), u)))
	})
}

// Unauthorized answers 401 with a Basic challenge and a DRF body.
func Unauthorized(w http.ResponseWriter, detail string) {
	w.Header().Set("WWW-Authenticate", `Basic realm="api"`)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	w.Write([]byte(`{"detail":"` + detail + `"}` + "\n")) //nolint:errcheck // client went away
}
