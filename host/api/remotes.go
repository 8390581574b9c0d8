package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/coretask"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/openapi"
	"github.com/pulpo/pulpo/host/tasks"
)

// Download policies of a remote.
var remotePolicies = []string{"immediate", "on_demand", "streamed"}

// remoteBody documents the fields common to every remote type, as Pulp's
// RemoteSerializer declares them. Write-only fields are left out of the
// response schemas; the response lists them in hidden_fields instead.
type remoteBody struct {
	base
	Name                string              `json:"name" doc:"A unique name for this remote."`
	URL                 string              `json:"url" doc:"The URL of an external content source."`
	CACert              *string             `json:"ca_cert,omitempty" doc:"A PEM encoded CA certificate used to validate the server certificate presented by the remote server."`
	ClientCert          *string             `json:"client_cert,omitempty" doc:"A PEM encoded client certificate used for authentication."`
	ClientKey           *string             `json:"client_key,omitempty" writeOnly:"true" doc:"A PEM encoded private key used for authentication."`
	TLSValidation       *bool               `json:"tls_validation,omitempty" doc:"If True, TLS peer validation must be performed."`
	ProxyURL            *string             `json:"proxy_url,omitempty" doc:"The proxy URL. Format: scheme://host:port"`
	ProxyUsername       *string             `json:"proxy_username,omitempty" writeOnly:"true" doc:"The username to authenticte to the proxy."`
	ProxyPassword       *string             `json:"proxy_password,omitempty" writeOnly:"true" doc:"The password to authenticate to the proxy. Extra leading and trailing whitespace characters are not trimmed."`
	Username            *string             `json:"username,omitempty" writeOnly:"true" doc:"The username to be used for authentication when syncing."`
	Password            *string             `json:"password,omitempty" writeOnly:"true" doc:"The password to be used for authentication when syncing. Extra leading and trailing whitespace characters are not trimmed."`
	PulpLabels          map[string]string   `json:"pulp_labels,omitempty"`
	DownloadConcurrency *int                `json:"download_concurrency,omitempty" doc:"Total number of simultaneous connections. If not set then the default value will be used."`
	MaxRetries          *int                `json:"max_retries,omitempty" doc:"Maximum number of retry attempts after a download failure. If not set then the default value (3) will be used."`
	Policy              string              `json:"policy,omitempty" enum:"immediate,on_demand,streamed" doc:"The policy to use when downloading content. The possible values include: 'immediate', 'on_demand', and 'streamed'. 'immediate' is the default."`
	TotalTimeout        *float64            `json:"total_timeout,omitempty" doc:"aiohttp.ClientTimeout.total (q.v.) for download-connections. The default is null, which will cause the default from the aiohttp library to be used."`
	ConnectTimeout      *float64            `json:"connect_timeout,omitempty" doc:"aiohttp.ClientTimeout.connect (q.v.) for download-connections. The default is null, which will cause the default from the aiohttp library to be used."`
	SockConnectTimeout  *float64            `json:"sock_connect_timeout,omitempty" doc:"aiohttp.ClientTimeout.sock_connect (q.v.) for download-connections. The default is null, which will cause the default from the aiohttp library to be used."`
	SockReadTimeout     *float64            `json:"sock_read_timeout,omitempty" doc:"aiohttp.ClientTimeout.sock_read (q.v.) for download-connections. The default is null, which will cause the default from the aiohttp library to be used."`
	Headers             []map[string]string `json:"headers,omitempty" doc:"Headers for aiohttp.Clientsession"`
	RateLimit           *int                `json:"rate_limit,omitempty" doc:"Limits requests per second for each concurrent downloader"`
	HiddenFields        []hiddenField       `json:"hidden_fields" readOnly:"true" doc:"List of hidden (write only) fields"`
}

// hiddenField tells whether a write-only field has a value.
type hiddenField struct {
	Name  string `json:"name"`
	IsSet bool   `json:"is_set"`
}

// remoteSecrets are the write-only fields, in Pulp's order.
var remoteSecrets = []string{"client_key", "proxy_username", "proxy_password", "username", "password"}

var remoteCoreFields = []string{"name", "url", "pulp_labels", "ca_cert", "client_cert", "client_key",
	"tls_validation", "proxy_url", "proxy_username", "proxy_password", "username", "password", "policy",
	"download_concurrency", "max_retries", "total_timeout", "connect_timeout", "sock_connect_timeout",
	"sock_read_timeout", "headers", "rate_limit"}

// remoteReadOnly are the fields a response adds; plugins may not reuse them.
var remoteReadOnly = []string{"pulp_href", "prn", "pulp_created", "pulp_last_updated", "hidden_fields", "pulp_type"}

var remoteFilters = append(append(append(commonFilters(), textFilters("name")...),
	filter{Param: "pulp_label_select", Field: "pulp_label_select", Kind: kRaw, Doc: "Filter labels by search string"},
	filter{Param: "url", Field: "url", Kind: kString, Doc: "Filter results where url matches value"},
), timeFilters("pulp_last_updated", "pulp_last_updated")...)

var remoteOrdering = []string{"pulp_id", "pulp_created", "pulp_last_updated", "name", "url", "policy",
	"tls_validation", "download_concurrency", "max_retries", "rate_limit", "total_timeout", "connect_timeout",
	"sock_connect_timeout", "sock_read_timeout", "proxy_url"}

// remoteType finds the declared type of a pulp_type.
func (s *Server) remoteType(pulpType string) (RemoteType, bool) {
	return declared(s.Types.Remotes, pulpType, func(t RemoteType) string { return t.PulpType })
}

// remoteHrefOf builds a remote's href from its own pulp_type; a type no
// loaded plugin declares keeps an href derived from its name.
func (s *Server) remoteHrefOf(pulpType string, id uuid.UUID) string {
	if rt, ok := s.remoteType(pulpType); ok {
		return href.Typed(href.Remotes, rt.Plugin, rt.Endpoint, id)
	}
	p, e := segments(pulpType)
	return href.Typed(href.Remotes, p, e, id)
}

func (s *Server) renderRemoteAny(rm db.Remote) any { return s.renderRemote(rm) }

// renderRemote flattens the core and plugin fields into one object. It reads
// no secret: those are only reported in hidden_fields.
func (s *Server) renderRemote(rm db.Remote) map[string]any {
	out := map[string]any{}
	if len(rm.Fields) > 0 {
		_ = json.Unmarshal(rm.Fields, &out)
	}
	labels, headers := rm.PulpLabels, rm.Headers
	if labels == nil {
		labels = map[string]string{}
	}
	if headers == nil {
		headers = []map[string]string{}
	}
	isSet := func(v *string) bool { return v != nil && *v != "" }
	secrets := map[string]*string{"client_key": rm.ClientKey, "proxy_username": rm.ProxyUsername,
		"proxy_password": rm.ProxyPassword, "username": rm.Username, "password": rm.Password}
	hidden := make([]hiddenField, 0, len(remoteSecrets))
	for _, name := range remoteSecrets {
		hidden = append(hidden, hiddenField{Name: name, IsSet: isSet(secrets[name])})
	}
	for k, v := range map[string]any{
		"pulp_href": s.remoteHrefOf(rm.PulpType, rm.ID), "prn": prn(rm.PulpType+"remote", rm.ID),
		"pulp_created": rm.CreatedAt, "pulp_last_updated": rm.UpdatedAt,
		"name": rm.Name, "url": rm.URL, "ca_cert": rm.CACert, "client_cert": rm.ClientCert,
		"tls_validation": rm.TLSValidation, "proxy_url": rm.ProxyURL, "pulp_labels": labels,
		"download_concurrency": rm.DownloadConcurrency, "max_retries": rm.MaxRetries, "policy": rm.Policy,
		"total_timeout": rm.TotalTimeout, "connect_timeout": rm.ConnectTimeout,
		"sock_connect_timeout": rm.SockConnectTimeout, "sock_read_timeout": rm.SockReadTimeout,
		"headers": headers, "rate_limit": rm.RateLimit, "hidden_fields": hidden,
	} {
		out[k] = v
	}
	return out
}

// checkRemoteTypes refuses remote types that would clash with each other or
// whose plugin fields would shadow (and so could expose) a core field.
func checkRemoteTypes(types []RemoteType) error {
	seen := map[string]bool{}
	for _, rt := range types {
		if rt.Plugin == "" || rt.Endpoint == "" || rt.PulpType == "" {
			return fmt.Errorf("remote type %s: plugin, endpoint and pulp_type are required", rt.PulpType)
		}
		if seen["t/"+rt.PulpType] || seen["e/"+rt.Plugin+"/"+rt.Endpoint] {
			return fmt.Errorf("remote type %s declared twice", rt.PulpType)
		}
		seen["t/"+rt.PulpType], seen["e/"+rt.Plugin+"/"+rt.Endpoint] = true, true
		for _, p := range rt.Policies {
			if !slices.Contains(remotePolicies, p) {
				return fmt.Errorf("remote type %s: unknown policy %q", rt.PulpType, p)
			}
		}
		for _, f := range rt.Fields {
			if slices.Contains(remoteCoreFields, f.Name) || slices.Contains(remoteReadOnly, f.Name) {
				return fmt.Errorf("remote type %s: field %q clashes with a core remote field", rt.PulpType, f.Name)
			}
		}
	}
	return nil
}

// policies are the download policies a remote type allows.
func (rt RemoteType) policies() []string {
	if len(rt.Policies) == 0 {
		return remotePolicies
	}
	return rt.Policies
}

// defaultPolicy is immediate, as in Pulp, unless the type does not allow it.
func (rt RemoteType) defaultPolicy() string {
	if p := rt.policies(); !slices.Contains(p, "immediate") {
		return p[0]
	}
	return "immediate"
}

// remoteSchemas returns the response, request and patched request schemas of
// rt, built from remoteBody plus the plugin fields.
func (s *Server) remoteSchemas(name string, rt RemoteType) (resp, req, patch *openapi.Schema) {
	policyEnum := make([]any, 0, 3)
	for _, p := range rt.policies() {
		policyEnum = append(policyEnum, p)
	}
	tune := func(sc *openapi.Schema) *openapi.Schema {
		for prop, min := range map[string]float64{"download_concurrency": 1, "max_retries": 0, "rate_limit": 0,
			"total_timeout": 0, "connect_timeout": 0, "sock_connect_timeout": 0, "sock_read_timeout": 0} {
			if p, ok := sc.Properties[prop]; ok {
				c := *p
				c.Minimum = &min
				sc.Properties[prop] = &c
			}
		}
		if p, ok := sc.Properties["policy"]; ok {
			c := *p
			c.Enum, c.Default = policyEnum, rt.defaultPolicy()
			sc.Properties["policy"] = &c
		}
		if p, ok := sc.Properties["tls_validation"]; ok {
			c := *p
			c.Default = true
			sc.Properties["tls_validation"] = &c
		}
		return sc
	}
	full := extend(openapi.SchemaOf(remoteBody{}), rt.Fields, false)
	for _, secret := range remoteSecrets {
		delete(full.Properties, secret)
	}
	resp = s.spec.Component(name+"RemoteResponse", tune(full))
	reqInline := tune(extend(s.requestSchema(remoteBody{}), rt.Fields, true))
	req = s.spec.Component(name+"Remote", reqInline)
	patched := *reqInline
	patched.Required = nil
	patch = s.spec.Component("Patched"+name+"Remote", &patched)
	return resp, req, patch
}

// remoteRoutes registers remotes/ and remotes/<plugin>/<endpoint>/ for every remote type.
func (s *Server) remoteRoutes() error {
	if err := checkRemoteTypes(s.Types.Remotes); err != nil {
		return err
	}
	generic := openapi.SchemaOf(remoteBody{})
	for _, secret := range remoteSecrets {
		delete(generic.Properties, secret)
	}
	generic = s.spec.Component("Remote", generic)
	if err := s.route("GET", href.APIRoot+"remotes/", openapi.Operation{ID: "remotes_list", Summary: "List remotes",
		Tags: []string{"Remotes"}, Params: listParams(append(remoteFilters, typeFilters()...), remoteOrdering),
		Responses: map[int]openapi.Response{200: {Description: "OK", Schema: openapi.PaginatedList(generic)}, 400: s.spec.ErrorResponse("Bad request")},
	}, listOf(append(remoteFilters, typeFilters()...), remoteOrdering, "", s.DB.ListRemotes, s.renderRemoteAny)); err != nil {
		return err
	}
	for _, rt := range s.Types.Remotes {
		if err := s.typedRemoteRoutes(rt); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) typedRemoteRoutes(rt RemoteType) error {
	resp, req, patch := s.remoteSchemas(strings.ReplaceAll(tag(rt.Plugin, rt.Endpoint), " ", ""), rt)
	return s.familyRoutes(family{
		master: href.Remotes, plugin: rt.Plugin, endpoint: rt.Endpoint, noun: rt.PulpType + " remote",
		resp: resp, req: req, patch: patch, filters: remoteFilters, ordering: remoteOrdering,
		list:   listOf(remoteFilters, remoteOrdering, rt.PulpType, s.DB.ListRemotes, s.renderRemoteAny),
		create: s.createRemote(rt),
		read:   readOne(func(r *http.Request) (db.Remote, error) { return s.remoteFromPath(r, rt) }, s.renderRemote),
		update: s.updateRemote(rt, false), partialUpdate: s.updateRemote(rt, true), del: s.deleteRemote(rt),
		updateAsync: true, deleteAsync: true,
	})
}

// remoteFromPath loads the remote of the path, which must be of type rt.
func (s *Server) remoteFromPath(r *http.Request, rt RemoteType) (db.Remote, error) {
	return typedFromPath(r, s.DB.GetRemote, func(x db.Remote) string { return x.PulpType }, rt.PulpType)
}

// remoteInput validates a create or update body onto rm. A field absent from
// a PATCH keeps its value; absent from a POST or PUT it takes its default:
// PUT replaces the whole remote, write-only secrets included, as PUT of a
// repository does. To change some fields and keep the secrets, use PATCH.
func (s *Server) remoteInput(o object, rt RemoteType, rm *db.Remote, create, partial bool) error {
	fe := fieldErrors{}
	known := map[string]bool{}
	for _, f := range remoteCoreFields {
		known[f] = true
	}
	for _, f := range rt.Fields {
		known[f.Name] = true
	}
	o.unexpected(fe, known)
	reset := !partial // absent fields take their defaults

	if name, present := o.str(fe, "name", false); name != nil {
		switch {
		case strings.TrimSpace(*name) == "":
			fe.add("name", "This field may not be blank.")
		case len(*name) > 255:
			fe.add("name", "Ensure this field has no more than 255 characters.")
		default:
			rm.Name = *name
		}
	} else if !present && reset {
		fe.add("name", "This field is required.")
	}
	if u, present := o.str(fe, "url", false); u != nil {
		if msg := checkRemoteURL(*u); msg != "" {
			fe.add("url", "%s", msg)
		} else {
			rm.URL = *u
		}
	} else if !present && reset {
		fe.add("url", "This field is required.")
	}
	if l, present := o.labels(fe, "pulp_labels"); present {
		rm.PulpLabels = l
	} else if reset {
		rm.PulpLabels = map[string]string{}
	}
	for _, f := range []struct {
		name string
		into **string
	}{
		{"ca_cert", &rm.CACert}, {"client_cert", &rm.ClientCert}, {"proxy_url", &rm.ProxyURL},
		{"client_key", &rm.ClientKey}, {"proxy_username", &rm.ProxyUsername},
		{"proxy_password", &rm.ProxyPassword}, {"username", &rm.Username}, {"password", &rm.Password},
	} {
		v, present := o.str(fe, f.name, true)
		switch {
		case v != nil && remoteBlank(f.name, *v):
			fe.add(f.name, "This field may not be blank.")
		case present:
			*f.into = v
		case reset:
			*f.into = nil
		}
	}
	if rm.ProxyURL != nil {
		if msg := checkProxyURL(*rm.ProxyURL); msg != "" {
			fe.add("proxy_url", "%s", msg)
		}
	}
	if b, present := remoteBool(o, fe, "tls_validation"); b != nil {
		rm.TLSValidation = *b
	} else if !present && reset {
		rm.TLSValidation = true
	}
	if p, present := o.str(fe, "policy", false); p != nil {
		if !slices.Contains(rt.policies(), *p) {
			fe.add("policy", "\"%s\" is not a valid choice.", *p)
		} else {
			rm.Policy = *p
		}
	} else if !present && reset {
		rm.Policy = rt.defaultPolicy()
	}
	for _, f := range []struct {
		name string
		into **int
		min  int
	}{
		{"download_concurrency", &rm.DownloadConcurrency, 1}, {"max_retries", &rm.MaxRetries, 0}, {"rate_limit", &rm.RateLimit, 0},
	} {
		if n, present := o.integer(fe, f.name, true, f.min); present {
			*f.into = n
		} else if reset {
			*f.into = nil
		}
	}
	for _, f := range []struct {
		name string
		into **float64
	}{
		{"total_timeout", &rm.TotalTimeout}, {"connect_timeout", &rm.ConnectTimeout},
		{"sock_connect_timeout", &rm.SockConnectTimeout}, {"sock_read_timeout", &rm.SockReadTimeout},
	} {
		if n, present := remoteFloat(o, fe, f.name, 0); present {
			*f.into = n
		} else if reset {
			*f.into = nil
		}
	}
	if h, present := remoteHeaders(o, fe, "headers"); present {
		rm.Headers = h
	} else if reset {
		rm.Headers = []map[string]string{}
	}
	// Proxy credentials need a proxy and come in pairs (Pulp's validate()).
	if _, bad := fe["proxy_url"]; !bad && rm.ProxyURL == nil && (rm.ProxyUsername != nil || rm.ProxyPassword != nil) {
		fe.add("proxy_url", "Proxy credentials cannot be specified without a proxy_url.")
	}
	if rm.ProxyUsername == nil && rm.ProxyPassword != nil {
		fe.add("proxy_username", "Proxy username and password can only be specified together.")
	}
	if rm.ProxyUsername != nil && rm.ProxyPassword == nil {
		fe.add("proxy_password", "Proxy username and password can only be specified together.")
	}
	old := rm.Fields
	if !partial {
		old = nil
	}
	rm.Fields = o.pluginFields(fe, rt.Fields, old, create || !partial)
	return fe.err()
}

// remoteBlank applies DRF's CharField rule: whitespace-only is blank, except for
// passwords, which are not trimmed.
func remoteBlank(field, v string) bool {
	if strings.HasSuffix(field, "password") {
		return v == ""
	}
	return strings.TrimSpace(v) == ""
}

// checkRemoteURL accepts absolute http, https and file URLs.
func checkRemoteURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || strings.TrimSpace(s) != s {
		return "Enter a valid URL."
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" || u.Hostname() == "" {
			return "Enter a valid URL."
		}
	case "file":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			return "Enter a valid file:// URL with an absolute path."
		}
	default:
		return "The URL scheme must be http, https or file."
	}
	return ""
}

// checkProxyURL accepts http, https and socks5 proxies without credentials in the URL.
func checkProxyURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5") {
		return "Enter a valid proxy URL: scheme://host:port with scheme http, https or socks5."
	}
	if u.User != nil || strings.Contains(s, "@") {
		return "proxy_url must not contain credentials; use proxy_username and proxy_password."
	}
	return ""
}

// remoteBool reads a non-null boolean field.
func remoteBool(o object, fe fieldErrors, name string) (*bool, bool) {
	raw, ok := o[name]
	if !ok {
		return nil, false
	}
	var b bool
	if isNull(raw) {
		fe.add(name, "This field may not be null.")
		return nil, true
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		fe.add(name, "Must be a valid boolean.")
		return nil, true
	}
	return &b, true
}

// remoteFloat reads a nullable number that must be at least min.
func remoteFloat(o object, fe fieldErrors, name string, min float64) (*float64, bool) {
	raw, ok := o[name]
	if !ok {
		return nil, false
	}
	if isNull(raw) {
		return nil, true
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		fe.add(name, "A valid number is required.")
		return nil, true
	}
	if f < min {
		fe.add(name, "Ensure this value is greater than or equal to %g.", min)
		return nil, true
	}
	return &f, true
}

// remoteHeaders reads a list of single-key objects of strings, e.g.
// [{"Accept": "application/json"}, {"X-Token": "..."}].
func remoteHeaders(o object, fe fieldErrors, name string) ([]map[string]string, bool) {
	raw, ok := o[name]
	if !ok {
		return nil, false
	}
	var list []map[string]json.RawMessage
	if isNull(raw) || json.Unmarshal(raw, &list) != nil {
		fe.add(name, "Expected a list of objects, each with one header name and its string value.")
		return nil, true
	}
	out := make([]map[string]string, 0, len(list))
	for i, h := range list {
		if len(h) != 1 {
			fe.add(name, "Item %d must have exactly one header name.", i)
			continue
		}
		for k, v := range h {
			var s string
			if err := json.Unmarshal(v, &s); err != nil || isNull(v) {
				fe.add(name, "Item %d: the value of a header must be a string.", i)
				continue
			}
			if k == "" || strings.ContainsAny(k, " \t\r\n:") || strings.ContainsAny(s, "\r\n") {
				fe.add(name, "Item %d: not a valid header.", i)
				continue
			}
			out = append(out, map[string]string{k: s})
		}
	}
	return out, true
}

// uniqueRemoteName reports a taken name the way Pulp's UniqueValidator does.
func (s *Server) uniqueRemoteName(r *http.Request, name string, self uuid.UUID) error {
	return uniqueName(r, s.DB.ListRemotes, func(x db.Remote) uuid.UUID { return x.ID }, name, self)
}

func (s *Server) createRemote(rt RemoteType) handlerFunc {
	return createOne(db.Remote{PulpType: rt.PulpType},
		func(_ *http.Request, o object, rm *db.Remote) error { return s.remoteInput(o, rt, rm, true, false) },
		s.DB.CreateRemote, s.renderRemote)
}

func (s *Server) updateRemote(rt RemoteType, partial bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		rm, err := s.remoteFromPath(r, rt)
		if err != nil {
			return err
		}
		o, err := decodeObject(w, r)
		if err != nil {
			return err
		}
		if err := s.remoteInput(o, rt, &rm, false, partial); err != nil {
			return err
		}
		if err := s.uniqueRemoteName(r, rm.Name, rm.ID); err != nil {
			return err
		}
		return s.dispatch(w, r, tasks.Spec{Name: coretask.UpdateRemote, Immediate: true,
			Exclusive: []string{s.remoteHrefOf(rt.PulpType, rm.ID)}, Args: coretask.UpdateRemoteArgs{Remote: rm}})
	}
}

func (s *Server) deleteRemote(rt RemoteType) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		rm, err := s.remoteFromPath(r, rt)
		if err != nil {
			return err
		}
		return s.dispatch(w, r, tasks.Spec{Name: coretask.DeleteRemote, Args: coretask.IDArgs{ID: rm.ID},
			Exclusive: []string{s.remoteHrefOf(rt.PulpType, rm.ID)}})
	}
}
