// pion-publisher: the rig's pion-based (server-sdk-go) publisher. Joins a room and publishes, looping,
// VP8 from an IVF file, H.264 from an Annex B file and/or Opus from an OGG file.
//
// stdout, one JSON object per line:
//
//	{"kind":"video","sid":"TR_…","codec":"vp8"}   per published track
//	{"event":"started","at":1733150000123}         wall ms of media time 0 (first sample of every track)
//
// With -file-track the tracks come from lksdk.NewLocalFileTrack as they are (no looping, the SDK's
// own pacing and timing): what a typical user program does.
//
// -withhold-key-frames sends every frame but the key frames: a track no subscriber can decode.
//
// PION_DEBUG_SAMPLES=1 logs every sample written (time, size, duration) on stderr.
//
// SIGINT/SIGTERM: unpublish, disconnect, exit 0.
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/livekit/protocol/livekit"
	protoLogger "github.com/livekit/protocol/logger"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/livekit/server-sdk-go/v2/pkg/oggreader"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
)

var out = json.NewEncoder(os.Stdout)
var debugSamples = os.Getenv("PION_DEBUG_SAMPLES") != ""
var outMu sync.Mutex

type started struct {
	Event string `json:"event"`
	At    int64  `json:"at"`
}

func emit(v any) {
	outMu.Lock()
	defer outMu.Unlock()
	_ = out.Encode(v)
}

func fatal(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pion-publisher: "+format+"\n", args...)
	os.Exit(1)
}

// source yields the samples of one file in order; reset starts it over.
type source interface {
	next() (media.Sample, error)
	reset() error
}

// ivfSource reads IVF itself. pion's ivfreader (v4.2.x) reports a frame's Timestamp as
// pts*den/num rather than the pts, so durations computed from it the way server-sdk-go's
// ReaderSampleProvider does (timebase * delta) come out (den/num)^2 times too long: 1 s per frame
// for a 1/30 timebase. Here a frame lasts from its pts to the next frame's, in timebase units.
type ivfSource struct {
	path     string
	f        *os.File
	timebase time.Duration // one pts unit
	pending  []byte        // the frame read ahead, whose pts ends the current one
	pendPTS  uint64
}

func (s *ivfSource) reset() error {
	if s.f != nil {
		_ = s.f.Close()
	}
	f, err := os.Open(s.path)
	if err != nil {
		return err
	}
	var h [32]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		_ = f.Close()
		return fmt.Errorf("%s: IVF header: %w", s.path, err)
	}
	if string(h[0:4]) != "DKIF" || string(h[8:12]) != "VP80" {
		_ = f.Close()
		return fmt.Errorf("%s: not a VP8 IVF file", s.path)
	}
	// bytes 16-19: time base denominator (rate), 20-23: numerator (scale)
	den, num := binary.LittleEndian.Uint32(h[16:20]), binary.LittleEndian.Uint32(h[20:24])
	if den == 0 || num == 0 {
		_ = f.Close()
		return fmt.Errorf("%s: invalid IVF time base %d/%d", s.path, num, den)
	}
	if hl := binary.LittleEndian.Uint16(h[6:8]); hl > 32 {
		if _, err := io.CopyN(io.Discard, f, int64(hl-32)); err != nil {
			_ = f.Close()
			return err
		}
	}
	s.f, s.pending = f, nil
	s.timebase = time.Duration(float64(time.Second) * float64(num) / float64(den))
	s.pending, s.pendPTS, err = s.frame()
	return err
}

func (s *ivfSource) frame() ([]byte, uint64, error) {
	var h [12]byte
	if _, err := io.ReadFull(s.f, h[:]); err != nil {
		return nil, 0, err
	}
	data := make([]byte, binary.LittleEndian.Uint32(h[0:4]))
	if _, err := io.ReadFull(s.f, data); err != nil {
		return nil, 0, err
	}
	return data, binary.LittleEndian.Uint64(h[4:12]), nil
}

func (s *ivfSource) next() (media.Sample, error) {
	if s.pending == nil {
		return media.Sample{}, io.EOF
	}
	data, pts := s.pending, s.pendPTS
	var err error
	s.pending, s.pendPTS, err = s.frame()
	d := s.timebase // the last frame: one pts unit
	switch {
	case err == nil && s.pendPTS > pts:
		d = time.Duration(s.pendPTS-pts) * s.timebase
	case err == nil:
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		s.pending = nil
	default:
		return media.Sample{}, err
	}
	return media.Sample{Data: data, Duration: d}, nil
}

// h264Source groups NAL units into access units (SPS/PPS + every slice of one picture) so that a
// picture coded in several slices is one sample of one frame period.
type h264Source struct {
	path    string
	frame   time.Duration
	f       *os.File
	r       *h264reader.H264Reader
	pending *h264reader.NAL
}

func (s *h264Source) reset() error {
	if s.f != nil {
		_ = s.f.Close()
	}
	f, err := os.Open(s.path)
	if err != nil {
		return err
	}
	r, err := h264reader.NewReader(f)
	if err != nil {
		_ = f.Close()
		return err
	}
	s.f, s.r, s.pending = f, r, nil
	return nil
}

func isSlice(t h264reader.NalUnitType) bool {
	return t == h264reader.NalUnitTypeCodedSliceIdr || t == h264reader.NalUnitTypeCodedSliceNonIdr
}

// first_mb_in_slice is ue(v) right after the header: 0 (a new picture) is the single bit 1.
func firstSlice(n *h264reader.NAL) bool { return len(n.Data) > 1 && n.Data[1]&0x80 != 0 }

func (s *h264Source) nal() (*h264reader.NAL, error) {
	if n := s.pending; n != nil {
		s.pending = nil
		return n, nil
	}
	return s.r.NextNAL()
}

func (s *h264Source) next() (media.Sample, error) {
	var au bytes.Buffer
	haveSlice := false
	for {
		n, err := s.nal()
		if err != nil {
			if errors.Is(err, io.EOF) && haveSlice {
				break
			}
			return media.Sample{}, err
		}
		switch {
		case n.UnitType == h264reader.NalUnitTypeSEI || n.UnitType == h264reader.NalUnitTypeAUD:
			continue
		case isSlice(n.UnitType):
			if haveSlice && firstSlice(n) {
				s.pending = n
				return media.Sample{Data: au.Bytes(), Duration: s.frame}, nil
			}
			haveSlice = true
		default: // SPS, PPS, …: they start the next access unit
			if haveSlice {
				s.pending = n
				return media.Sample{Data: au.Bytes(), Duration: s.frame}, nil
			}
		}
		au.Write([]byte{0, 0, 0, 1})
		au.Write(n.Data)
	}
	return media.Sample{Data: au.Bytes(), Duration: s.frame}, nil
}

type oggSource struct {
	path string
	f    *os.File
	r    *oggreader.OggReader
}

func (s *oggSource) reset() error {
	if s.f != nil {
		_ = s.f.Close()
	}
	f, err := os.Open(s.path)
	if err != nil {
		return err
	}
	r, _, err := oggreader.NewOggReader(f)
	if err != nil {
		_ = f.Close()
		return err
	}
	s.f, s.r = f, r
	return nil
}

func (s *oggSource) next() (media.Sample, error) {
	for {
		p, err := s.r.ReadPacket()
		if err != nil {
			return media.Sample{}, err
		}
		// OpusHead / OpusTags
		if bytes.HasPrefix(p, []byte("OpusHead")) || bytes.HasPrefix(p, []byte("OpusTags")) {
			continue
		}
		d, err := oggreader.ParsePacketDuration(p)
		if err != nil {
			return media.Sample{}, err
		}
		return media.Sample{Data: p, Duration: d}, nil
	}
}

type pubTrack struct {
	kind, codec string
	// withholdKeys: key frames are not sent (their time passes): a track that never decodes
	withholdKeys bool
	track        *lksdk.LocalTrack
	src          source
	bound        chan struct{}
	sid          string
	// period: the files' common length. Each loop starts at a multiple of it, whatever a file holds past
	// it (an Opus file runs a frame long: libopus's pre-skip), so audio and video stay on one timeline.
	period time.Duration
}

// loop writes the source's samples on the wall clock from t0 on, starting the file over at its end,
// or at the end of the period.
func (p *pubTrack) loop(t0 time.Time, stop <-chan struct{}) {
	at := t0
	loopStart := t0
	level := uint8(30)
	for {
		select {
		case <-stop:
			return
		case <-time.After(time.Until(at)):
		}
		s, err := p.src.next()
		pastPeriod := err == nil && p.period > 0 && at.Add(s.Duration).Sub(loopStart) > p.period+time.Millisecond
		if pastPeriod || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			if p.period > 0 {
				loopStart = loopStart.Add(p.period)
				if at.Before(loopStart) {
					at = loopStart
				}
			}
			if err = p.src.reset(); err == nil {
				s, err = p.src.next()
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "pion-publisher: %s: %v\n", p.kind, err)
			return
		}
		if p.withholdKeys && isKeyFrame(p.codec, s.Data) {
			at = at.Add(s.Duration)
			continue
		}
		// Timestamp = the sample's media time on the wall clock: RTP timestamps follow media time.
		s.Timestamp = at
		var opts *lksdk.SampleWriteOptions
		if p.kind == "audio" {
			opts = &lksdk.SampleWriteOptions{AudioLevel: &level}
		}
		if err := p.track.WriteSample(s, opts); err != nil {
			fmt.Fprintf(os.Stderr, "pion-publisher: %s: write: %v\n", p.kind, err)
		}
		if debugSamples {
			fmt.Fprintf(os.Stderr, "pion-publisher: %s sample at +%v: %d bytes, %v\n", p.kind, at.Sub(t0), len(s.Data), s.Duration)
		}
		at = at.Add(s.Duration)
	}
}

func isKeyFrame(codec string, data []byte) bool {
	switch codec {
	case "vp8": // frame tag: bit 0 of the first byte is 0 on a key frame
		return len(data) > 0 && data[0]&0x01 == 0
	case "h264": // an IDR slice in the access unit
		for i := 0; i+4 < len(data); i++ {
			if data[i] == 0 && data[i+1] == 0 && data[i+2] == 1 && data[i+3]&0x1f == 5 {
				return true
			}
		}
	}
	return false
}

func main() {
	var (
		url       = flag.String("url", "", "ws url of livekit-server")
		apiKey    = flag.String("api-key", "", "")
		apiSecret = flag.String("api-secret", "", "")
		room      = flag.String("room", "", "")
		identity  = flag.String("identity", "pion-publisher", "")
		ivf       = flag.String("ivf", "", "VP8 IVF file to publish")
		h264      = flag.String("h264", "", "H.264 Annex B file to publish")
		ogg       = flag.String("ogg", "", "Opus OGG file to publish")
		fps       = flag.Float64("fps", 30, "frame rate of the H.264 file")
		width     = flag.Int("width", 640, "published video width")
		height    = flag.Int("height", 360, "published video height")
		fileTrack = flag.Bool("file-track", false, "use lksdk.NewLocalFileTrack as is (no looping)")
		period    = flag.Duration("period", 0, "the files' common length: every track loops on it (0: at each file's end)")
		noKeys    = flag.Bool("withhold-key-frames", false, "never send a video key frame (a track that cannot be decoded)")
		verbose   = flag.Bool("v", false, "SDK logs on stderr")
	)
	flag.Parse()
	if *url == "" || *room == "" || *apiKey == "" {
		fatal("-url, -room, -api-key and -api-secret are required")
	}
	if *noKeys && *fileTrack {
		fatal("-withhold-key-frames needs the looping publisher (no -file-track)")
	}
	if *ivf != "" && *h264 != "" {
		fatal("one video track: -ivf or -h264")
	}
	if !*verbose {
		lksdk.SetLogger(quietLogger())
	}

	var tracks []*pubTrack
	add := func(kind, codec, mime, path string, src source) {
		p := &pubTrack{kind: kind, codec: codec, src: src, bound: make(chan struct{}), withholdKeys: *noKeys && kind == "video", period: *period}
		var err error
		if *fileTrack {
			p.track, err = lksdk.NewLocalFileTrack(path)
		} else {
			if err = src.reset(); err != nil {
				fatal("%s: %v", path, err)
			}
			clock := uint32(90000)
			if kind == "audio" {
				clock = 48000
			}
			p.track, err = lksdk.NewLocalTrack(webrtc.RTPCodecCapability{MimeType: mime, ClockRate: clock})
		}
		if err != nil {
			fatal("%s: %v", path, err)
		}
		if !*fileTrack {
			var once sync.Once
			p.track.OnBind(func() { once.Do(func() { close(p.bound) }) })
		}
		tracks = append(tracks, p)
	}
	if *ogg != "" {
		add("audio", "opus", webrtc.MimeTypeOpus, *ogg, &oggSource{path: *ogg})
	}
	if *ivf != "" {
		add("video", "vp8", webrtc.MimeTypeVP8, *ivf, &ivfSource{path: *ivf})
	}
	if *h264 != "" {
		add("video", "h264", webrtc.MimeTypeH264, *h264, &h264Source{path: *h264, frame: time.Duration(float64(time.Second) / *fps)})
	}
	if len(tracks) == 0 {
		fatal("nothing to publish: give -ivf, -h264 and/or -ogg")
	}

	disconnected := make(chan struct{})
	var discOnce sync.Once
	cb := &lksdk.RoomCallback{OnDisconnected: func() { discOnce.Do(func() { close(disconnected) }) }}
	r, err := lksdk.ConnectToRoom(*url, lksdk.ConnectInfo{
		APIKey: *apiKey, APISecret: *apiSecret, RoomName: *room, ParticipantIdentity: *identity,
	}, cb, lksdk.WithAutoSubscribe(false))
	if err != nil {
		fatal("connect: %v", err)
	}

	for _, p := range tracks {
		opts := &lksdk.TrackPublicationOptions{Name: p.kind}
		if p.kind == "audio" {
			opts.Source = livekit.TrackSource_MICROPHONE
		} else {
			opts.Source = livekit.TrackSource_CAMERA
			opts.VideoWidth, opts.VideoHeight = *width, *height
		}
		pub, err := r.LocalParticipant.PublishTrack(p.track, opts)
		if err != nil {
			r.Disconnect()
			fatal("publish %s: %v", p.kind, err)
		}
		p.sid = pub.SID()
		emit(struct {
			Kind  string `json:"kind"`
			SID   string `json:"sid"`
			Codec string `json:"codec"`
		}{p.kind, p.sid, p.codec})
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	if *fileTrack {
		emit(started{"started", time.Now().UnixMilli()})
	} else {
		for _, p := range tracks {
			select {
			case <-p.bound:
			case <-time.After(20 * time.Second):
				r.Disconnect()
				fatal("%s track was never bound (negotiation failed)", p.kind)
			}
		}
		// a shared media time 0, a little ahead so that every loop starts on it
		t0 := time.Now().Add(50 * time.Millisecond)
		emit(started{"started", t0.UnixMilli()})
		for _, p := range tracks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.loop(t0, stop)
			}()
		}
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	code := 0
	select {
	case <-sig:
	case <-disconnected:
		fmt.Fprintln(os.Stderr, "pion-publisher: disconnected by the server")
		code = 1
	}
	close(stop)
	wg.Wait()
	for _, p := range tracks {
		if err := r.LocalParticipant.UnpublishTrack(p.sid); err != nil && !strings.Contains(err.Error(), "cannot find") {
			fmt.Fprintf(os.Stderr, "pion-publisher: unpublish %s: %v\n", p.kind, err)
		}
	}
	r.Disconnect()
	os.Exit(code)
}

// quietLogger: warnings and errors only, on stderr.
func quietLogger() protoLogger.Logger {
	l, err := protoLogger.NewZapLogger(&protoLogger.Config{Level: "warn"})
	if err != nil {
		return protoLogger.GetDiscardLogger()
	}
	return l
}
