package harness

import "net/http"

// The bootstrap administrator of every server the harness starts
// (PULPO_ADMIN_PASSWORD, overridable through Options.Env). Clients send
// these credentials unless told otherwise.
const (
	AdminUsername = "admin"
	AdminPassword = "harness-admin-password"
)

// As returns a copy of c sending username and password with every request.
func (c *Client) As(username, password string) *Client {
	cp := *c
	cp.Header = c.Header.Clone()
	req := &http.Request{Header: http.Header{}}
	req.SetBasicAuth(username, password)
	cp.Header.Set("Authorization", req.Header.Get("Authorization"))
	return &cp
}

// Anonymous returns a copy of c sending no credentials.
func (c *Client) Anonymous() *Client {
	cp := *c
	cp.Header = c.Header.Clone()
	cp.Header.Del("Authorization")
	return &cp
}
