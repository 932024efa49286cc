package identity

import "github.com/monostack/monostack/internal/api"

// catalogRoutes registers regions, services and endpoints.
func (s *Service) catalogRoutes(rt *api.Router) {}
