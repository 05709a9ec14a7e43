package evpn

import (
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"go.uber.org/zap"
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

func (l *gobgpLogger) Panic(msg string, f gobgplog.Fields) { l.log.Panic(msg, fields(f)...) }

// Fatal is logged as an error: a library must not exit brtun.
func (l *gobgpLogger) Fatal(msg string, f gobgplog.Fields) { l.log.Error(msg, fields(f)...) }
func (l *gobgpLogger) Error(msg string, f gobgplog.Fields) { l.log.Error(msg, fields(f)...) }
func (l *gobgpLogger) Warn(msg string, f gobgplog.Fields)  { l.log.Warn(msg, fields(f)...) }
func (l *gobgpLogger) Info(msg string, f gobgplog.Fields)  { l.log.Debug(msg, fields(f)...) }
func (l *gobgpLogger) Debug(msg string, f gobgplog.Fields) { l.log.Debug(msg, fields(f)...) }
func (l *gobgpLogger) SetLevel(gobgplog.LogLevel)          {}
func (l *gobgpLogger) GetLevel() gobgplog.LogLevel         { return gobgplog.DebugLevel }
