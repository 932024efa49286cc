package app

import (
	"context"
	"io"

	"github.com/monostack/monostack/internal/agent"
	"github.com/monostack/monostack/internal/container"
	"github.com/monostack/monostack/internal/runtime"
)

// The containers service's interactive sessions (container.Terminals),
// kept by the agent of the container's host (agent/interactive.go).

func (h containerHosts) OpenTerminal(ctx context.Context, host, project, id string, args []string) (string, string, error) {
	tk, err := h.client.OpenTerminal(ctx, host, agent.TerminalOpen{ID: id, Project: project, Args: args, Attach: args == nil})
	return tk.Session, tk.Token, err
}

func (h containerHosts) StartTerminal(ctx context.Context, host, id, session, token string) (io.ReadWriteCloser, error) {
	return h.client.StartTerminal(ctx, host, agent.TerminalStart{ID: id, Session: session, Token: token})
}

func (h containerHosts) RefuseTerminal(ctx context.Context, host, id, session, token string) error {
	return h.client.RefuseTerminal(ctx, host, agent.TerminalStart{ID: id, Session: session, Token: token})
}

func (h containerHosts) ResizeTerminal(ctx context.Context, host, id, session string, rows, cols int) error {
	return h.client.ResizeTerminal(ctx, host, agent.TerminalResize{ID: id, Session: session,
		Size: runtime.WindowSize{Rows: uint16(rows), Cols: uint16(cols)}})
}

var _ container.Terminals = containerHosts{}
