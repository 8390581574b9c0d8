package api

// remoteRoutes registers remotes/<plugin>/<endpoint>/ for every remote type.
func (s *Server) remoteRoutes() error {
	return nil
}
