package api

import (
	"net/http"
	"sort"
	"time"

	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/openapi"
)

type versionInfo struct {
	Component        string `json:"component"`
	Version          string `json:"version"`
	Package          string `json:"package"`
	Module           string `json:"module"`
	DomainCompatible bool   `json:"domain_compatible"`
}

type appInfo struct {
	PulpHref      string            `json:"pulp_href,omitempty" format:"uri"`
	Name          string            `json:"name"`
	LastHeartbeat time.Time         `json:"last_heartbeat"`
	Versions      map[string]string `json:"versions"`
}

type connection struct {
	Connected bool `json:"connected"`
}

type storageInfo struct {
	Total int64 `json:"total"`
	Used  int64 `json:"used"`
	Free  int64 `json:"free"`
}

type contentSettings struct {
	ContentOrigin     string `json:"content_origin"`
	ContentPathPrefix string `json:"content_path_prefix"`
}

type statusResponse struct {
	Versions           []versionInfo   `json:"versions"`
	OnlineWorkers      []appInfo       `json:"online_workers"`
	OnlineAPIApps      []appInfo       `json:"online_api_apps"`
	OnlineContentApps  []appInfo       `json:"online_content_apps"`
	DatabaseConnection connection      `json:"database_connection"`
	RedisConnection    connection      `json:"redis_connection"`
	Storage            *storageInfo    `json:"storage"`
	ContentSettings    contentSettings `json:"content_settings"`
	DomainEnabled      bool            `json:"domain_enabled"`
}

func (s *Server) statusRoutes() error {
	return s.route("GET", href.APIRoot+"status/", openapi.Operation{
		ID: "status_read", Summary: "Inspect status of Pulp",
		Description: "Returns status information about the application: versions, online workers and apps, database and storage health.",
		Tags:        []string{"Status"},
		Responses:   map[int]openapi.Response{200: {Description: "OK", Schema: s.spec.SchemaOf("StatusResponse", statusResponse{})}},
	}, s.status)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	out := statusResponse{
		OnlineWorkers: []appInfo{}, OnlineAPIApps: []appInfo{}, OnlineContentApps: []appInfo{},
		ContentSettings: contentSettings{ContentOrigin: s.ContentOrigin, ContentPathPrefix: s.ContentPathPrefix},
	}
	names := make([]string, 0, len(s.Versions))
	for n := range s.Versions {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out.Versions = append(out.Versions, versionInfo{Component: n, Version: s.Versions[n], Package: "pulpo-" + n, Module: "pulpo." + n})
	}
	apps, err := s.DB.ListApps(ctx, "")
	out.DatabaseConnection.Connected = err == nil
	for _, a := range apps {
		if !a.Online {
			continue
		}
		info := appInfo{Name: a.Name, LastHeartbeat: a.LastHeartbeat, Versions: a.Versions}
		switch a.Type {
		case "worker":
			info.PulpHref = href.Flat(href.Workers, a.ID)
			out.OnlineWorkers = append(out.OnlineWorkers, info)
		case "api":
			out.OnlineAPIApps = append(out.OnlineAPIApps, info)
		case "content":
			out.OnlineContentApps = append(out.OnlineContentApps, info)
		}
	}
	if s.StorageUsage != nil {
		if total, used, free, err := s.StorageUsage(ctx); err == nil {
			out.Storage = &storageInfo{Total: total, Used: used, Free: free}
		}
	}
	status := http.StatusOK
	if !out.DatabaseConnection.Connected {
		status = http.StatusServiceUnavailable
	}
	return writeJSON(w, status, out)
}
