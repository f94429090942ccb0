// Package main is the thumbs example Go plugin (runtime: plugin; make
// plugins builds it to bin/plugins/thumbs.so).
//
// Given a storage notification it makes a thumbnail of the object the event
// names: it reads OBJECT_ROOT/<bucket>/<key> (the bucket directory of a
// local store, such as a MinIO data directory), scales the image to fit in
// THUMB_SIZE×THUMB_SIZE pixels (default 128; it never enlarges), and writes
// THUMB_DIR/<bucket>/<key>.thumb.png (.thumb.jpg for a JPEG). It returns
// JSON describing what it did. An object that is removed has its thumbnail
// removed too. An event naming a missing or undecodable object, or a key
// escaping the bucket, fails that event.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // a GIF source is thumbnailed too
	"image/jpeg"
	"image/png"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/plugins"
)

// maxPixels bounds the images thumbs decodes, so one huge object cannot
// exhaust the gateway's memory.
const maxPixels = 64 << 20

// defaultSize is the thumbnail's longest side when THUMB_SIZE is not set.
const defaultSize = 128

type record struct {
	S3 struct {
		Bucket struct {
			Name string `json:"name"`
		} `json:"bucket"`
		Object struct {
			Key string `json:"key"`
		} `json:"object"`
	} `json:"s3"`
}

type imageInfo struct {
	Path   string `json:"path"`
	Format string `json:"format"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Bytes  int64  `json:"bytes"`
}

type answer struct {
	Bucket    string     `json:"bucket"`
	Key       string     `json:"key"`
	Source    *imageInfo `json:"source,omitempty"`
	Thumbnail *imageInfo `json:"thumbnail,omitempty"`
	Removed   []string   `json:"removed,omitempty"`
}

// Handle makes, or for a removed object removes, the thumbnail of the
// object ev names.
func Handle(ctx context.Context, ev *plugins.Event) ([]byte, error) {
	root, out := plugins.Getenv(ctx, "OBJECT_ROOT"), plugins.Getenv(ctx, "THUMB_DIR")
	if root == "" || out == "" {
		return nil, errors.New("thumbs: OBJECT_ROOT and THUMB_DIR must be set in the function's env")
	}
	size := defaultSize
	if s := plugins.Getenv(ctx, "THUMB_SIZE"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 4096 {
			return nil, fmt.Errorf("thumbs: THUMB_SIZE %q is not a size from 1 to 4096", s)
		}
		size = n
	}
	var rec record
	if err := json.Unmarshal(ev.Data, &rec); err != nil {
		return nil, fmt.Errorf("thumbs: event %s is not an S3 record: %w", ev.ID, err)
	}
	bucket := rec.S3.Bucket.Name
	// S3 notifications carry URL-encoded keys (a space is "+").
	key, err := url.QueryUnescape(rec.S3.Object.Key)
	if err != nil {
		return nil, fmt.Errorf("thumbs: key %q: %w", rec.S3.Object.Key, err)
	}
	rel := filepath.Join(bucket, filepath.FromSlash(key))
	if bucket == "" || key == "" || strings.ContainsRune(bucket, '/') || !filepath.IsLocal(rel) ||
		!strings.HasPrefix(rel, bucket+string(filepath.Separator)) {
		return nil, fmt.Errorf("thumbs: bucket %q and key %q do not name an object inside OBJECT_ROOT", bucket, key)
	}
	a := answer{Bucket: bucket, Key: key}
	switch ev.Type {
	case plugins.TypeStorageRemoved:
		for _, ext := range []string{".thumb.png", ".thumb.jpg"} {
			p := filepath.Join(out, rel+ext)
			if err := os.Remove(p); err == nil {
				a.Removed = append(a.Removed, p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("thumbs: %w", err)
			}
		}
		return json.Marshal(a)
	case plugins.TypeStorageCreated:
	default:
		return nil, fmt.Errorf("thumbs: event %s has type %q, want a storage notification", ev.ID, ev.Type)
	}

	src, thumb, err := makeThumbnail(ctx, filepath.Join(root, rel), filepath.Join(out, rel), size)
	if err != nil {
		return nil, err
	}
	a.Source, a.Thumbnail = src, thumb
	return json.Marshal(a)
}

// makeThumbnail reads the image at srcPath and writes its thumbnail next to
// dstBase (dstBase + ".thumb.png" or ".thumb.jpg"), replacing any old one
// atomically.
func makeThumbnail(ctx context.Context, srcPath, dstBase string, size int) (*imageInfo, *imageInfo, error) {
	f, err := os.Open(srcPath)
	if err != nil {
		return nil, nil, fmt.Errorf("thumbs: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("thumbs: %w", err)
	}
	cfg, format, err := image.DecodeConfig(f)
	if err != nil {
		return nil, nil, fmt.Errorf("thumbs: %s: %w", srcPath, err)
	}
	if int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return nil, nil, fmt.Errorf("thumbs: %s is %d×%d, more than %d pixels", srcPath, cfg.Width, cfg.Height, maxPixels)
	}
	if _, err := f.Seek(0, 0); err != nil {
		return nil, nil, fmt.Errorf("thumbs: %w", err)
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, nil, fmt.Errorf("thumbs: %s: %w", srcPath, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	w, h := fit(img.Bounds().Dx(), img.Bounds().Dy(), size)
	small := scale(img, w, h)

	outFormat, ext := "png", ".thumb.png"
	if format == "jpeg" {
		outFormat, ext = "jpeg", ".thumb.jpg"
	}
	dst := dstBase + ext
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return nil, nil, fmt.Errorf("thumbs: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".thumb-*")
	if err != nil {
		return nil, nil, fmt.Errorf("thumbs: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left to remove
	if outFormat == "jpeg" {
		err = jpeg.Encode(tmp, small, &jpeg.Options{Quality: 85})
	} else {
		err = png.Encode(tmp, small)
	}
	if err == nil {
		err = tmp.Close()
	} else {
		tmp.Close()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("thumbs: writing %s: %w", dst, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return nil, nil, fmt.Errorf("thumbs: %w", err)
	}
	st, err := os.Stat(dst)
	if err != nil {
		return nil, nil, fmt.Errorf("thumbs: %w", err)
	}
	return &imageInfo{Path: srcPath, Format: format, Width: cfg.Width, Height: cfg.Height, Bytes: fi.Size()},
		&imageInfo{Path: dst, Format: outFormat, Width: w, Height: h, Bytes: st.Size()}, nil
}

// main is never run: a plugin is loaded, not executed. It lets
// `go build ./...` build this package like any other.
func main() {}
