package connector

import (
	"context"
	"fmt"
	"log/slog"

	waLog "go.mau.fi/whatsmeow/util/log"
)

// waLogger adapts slog to whatsmeow's logger. whatsmeow is chatty at debug
// and info level, so only warnings and errors pass by default.
type waLogger struct {
	log *slog.Logger
	min slog.Level
}

// WALogger returns a whatsmeow logger that writes to log what whatsmeow
// logs at min or above.
func WALogger(log *slog.Logger, min slog.Level) waLog.Logger { return newWALogger(log, min) }

func newWALogger(log *slog.Logger, min slog.Level) waLog.Logger {
	return &waLogger{log: log, min: min}
}

func (l *waLogger) emit(level slog.Level, msg string, args []any) {
	if level < l.min || !l.log.Enabled(context.Background(), level) {
		return
	}
	l.log.Log(context.Background(), level, fmt.Sprintf(msg, args...))
}

func (l *waLogger) Warnf(msg string, args ...any)  { l.emit(slog.LevelWarn, msg, args) }
func (l *waLogger) Errorf(msg string, args ...any) { l.emit(slog.LevelError, msg, args) }
func (l *waLogger) Infof(msg string, args ...any)  { l.emit(slog.LevelInfo, msg, args) }
func (l *waLogger) Debugf(msg string, args ...any) { l.emit(slog.LevelDebug, msg, args) }
func (l *waLogger) Sub(module string) waLog.Logger {
	return &waLogger{log: l.log.With("module", module), min: l.min}
}
