package api

import (
	"context"

	"go.uber.org/zap"

	"github.com/microapps/microapps/store"
)

// queueSubscriptions asks, once an integration is stored, for its event
// subscriptions to follow a write that named events.enabled: registered at
// once when on, removed at once when off (see Options.QueueSubscriptions).
// A creation with events off has nothing to remove. A failure is logged: the
// next sync brings the subscriptions in step anyway.
func (h *handler) queueSubscriptions(ctx context.Context, body *integrationWrite, in store.Integration, creating bool) {
	if h.QueueSubscriptions == nil || body.Events == nil || body.Events.Enabled == nil || (creating && !in.EventsEnabled) {
		return
	}
	if err := h.QueueSubscriptions(ctx, in.ID, in.EventsEnabled); err != nil {
		h.Log.Warn("admin api: could not queue the event subscriptions; the next sync will bring them in step",
			zap.String("integrationId", in.ID), zap.Error(err))
	}
}
