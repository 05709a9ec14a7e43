package evpn

import (
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// gobgpLogger hands GoBGP's log lines to zap. GoBGP's info level is chatty
// (every FSM step), so it is logged at debug; warnings and errors stay.
type gobgpLogger struct {
	log *zap.Logger
}

func fields(f gobgplog.Fields) []zap.Field {
	out := make([]zap.Field, 0, len(f))
	for k, v := range f {
		out = append(out, zap.Any(k, v))
	}
	return out
}

// write logs at level, converting GoBGP's fields only when zap keeps the
// entry: GoBGP logs per route at debug level.
func (l *gobgpLogger) write(level zapcore.Level, msg string, f gobgplog.Fields) {
	if ce := l.log.Check(level, msg); ce != nil {
		ce.Write(fields(f)...)
	}
}

func (l *gobgpLogger) Panic(msg string, f gobgplog.Fields) { l.log.Panic(msg, fields(f)...) }

// Fatal is logged as an error: a library must not exit brtun.
func (l *gobgpLogger) Fatal(msg string, f gobgplog.Fields) { l.write(zapcore.ErrorLevel, msg, f) }
func (l *gobgpLogger) Error(msg string, f gobgplog.Fields) { l.write(zapcore.ErrorLevel, msg, f) }
func (l *gobgpLogger) Warn(msg string, f gobgplog.Fields)  { l.write(zapcore.WarnLevel, msg, f) }
func (l *gobgpLogger) Info(msg string, f gobgplog.Fields)  { l.write(zapcore.DebugLevel, msg, f) }
func (l *gobgpLogger) Debug(msg string, f gobgplog.Fields) { l.write(zapcore.DebugLevel, msg, f) }
func (l *gobgpLogger) SetLevel(gobgplog.LogLevel)          {}

// GetLevel tells GoBGP to skip building the fields of entries zap would
// drop (it asks before some per-route debug lines).
func (l *gobgpLogger) GetLevel() gobgplog.LogLevel {
	if l.log.Core().Enabled(zapcore.DebugLevel) {
		return gobgplog.DebugLevel
	}
	return gobgplog.WarnLevel
}
