package compute

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/monostack/monostack/internal/api"
)

// SnapshotImages is what createImage needs of the Image service besides
// Lookup. An Images that does not implement it makes createImage a 501.
type SnapshotImages interface {
	// CreateSnapshot makes a queued image owned by project, for the
	// snapshot of server, and returns its id.
	CreateSnapshot(ctx context.Context, c *api.Credentials, project, name string, props map[string]string) (string, error)
	// UploadSnapshot stores the image's bytes, read to the end of r.
	UploadSnapshot(ctx context.Context, id string, r io.Reader) error
	// DeleteImage removes an image whose snapshot failed.
	DeleteImage(ctx context.Context, id string) error
}

// handleCreateImage is the createImage action: a snapshot of the server's
// root filesystem, uploaded to the Image service as a new image, bootable
// again. It answers 202 with the image's id at once; the image turns active
// when the upload is done (or is removed if it fails).
func (s *Service) handleCreateImage(w http.ResponseWriter, r *http.Request, v api.Version, sv Server, arg json.RawMessage) error {
	ctx := r.Context()
	c := api.CredentialsFrom(ctx)
	si, ok := s.images.(SnapshotImages)
	if !ok {
		return api.Errorf(http.StatusNotImplemented, "createImage is not available on this cloud.")
	}
	var body struct {
		Name     *string           `json:"name"`
		Metadata map[string]string `json:"metadata"`
	}
	if err := api.Unmarshal(arg, &body); err != nil {
		return err
	}
	if body.Name == nil || *body.Name == "" || len(*body.Name) > 255 {
		return api.BadRequest("Invalid input for field/attribute name. Value: %v. It must be a string of 1 to 255 characters.", body.Name)
	}
	if err := s.beginAction(ctx, r, sv, "createImage", taskSnapshot, []string{vmActive, vmStopped, vmPaused, vmSuspended}); err != nil {
		return err
	}
	props := map[string]string{"image_type": "snapshot", "instance_uuid": sv.ID, "base_image_ref": sv.ImageID, "user_id": c.UserID}
	for k, val := range body.Metadata {
		props[k] = val
	}
	imageID, err := si.CreateSnapshot(ctx, c, sv.ProjectID, *body.Name, props)
	if err != nil {
		s.setTask(context.Background(), sv.ID, "")
		s.finishAction(context.Background(), sv.ID, "createImage", err)
		return err
	}
	id, host := sv.ID, sv.Host
	s.spawn(id, func(ctx context.Context) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(s.hosts.Snapshot(ctx, host, id, pw)) }()
		err := si.UploadSnapshot(ctx, imageID, pr)
		pr.CloseWithError(err)
		if err != nil {
			s.log.Error("snapshot failed", "server", id, "image", imageID, "err", err)
			if derr := si.DeleteImage(ctx, imageID); derr != nil {
				s.log.Error("removing a failed snapshot", "image", imageID, "err", derr)
			}
		}
		s.setTask(ctx, id, "")
		s.finishAction(ctx, id, "createImage", err)
	})
	w.Header().Set("Location", fmt.Sprintf("%s/image/v2/images/%s", api.BaseURL(r), imageID))
	if v.AtLeast(2, 45) {
		api.WriteJSON(w, http.StatusAccepted, map[string]any{"image_id": imageID})
		return nil
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}
