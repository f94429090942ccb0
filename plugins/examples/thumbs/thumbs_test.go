package main

import (
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/plugins"
)

func TestFit(t *testing.T) {
	tests := []struct{ w, h, size, ww, wh int }{
		{300, 200, 128, 128, 85},
		{200, 300, 128, 85, 128},
		{100, 50, 128, 100, 50},
		{1000, 1, 128, 128, 1},
		{128, 128, 128, 128, 128},
	}
	for _, tt := range tests {
		if w, h := fit(tt.w, tt.h, tt.size); w != tt.ww || h != tt.wh {
			t.Errorf("fit(%d, %d, %d) = %d×%d, want %d×%d", tt.w, tt.h, tt.size, w, h, tt.ww, tt.wh)
		}
	}
}

func TestScale(t *testing.T) {
	t.Run("uniform stays uniform", func(t *testing.T) {
		src := image.NewNRGBA(image.Rect(0, 0, 333, 77))
		c := color.NRGBA{10, 200, 30, 255}
		for y := 0; y < 77; y++ {
			for x := 0; x < 333; x++ {
				src.SetNRGBA(x, y, c)
			}
		}
		dst := scale(src, 97, 23)
		for y := 0; y < 23; y++ {
			for x := 0; x < 97; x++ {
				if got := dst.RGBAAt(x, y); got != (color.RGBA{10, 200, 30, 255}) {
					t.Fatalf("pixel %d,%d = %v", x, y, got)
				}
			}
		}
	})
	t.Run("a checkerboard averages to grey", func(t *testing.T) {
		src := image.NewGray(image.Rect(0, 0, 256, 256))
		for y := 0; y < 256; y++ {
			for x := 0; x < 256; x++ {
				if (x+y)%2 == 0 {
					src.SetGray(x, y, color.Gray{255})
				}
			}
		}
		dst := scale(src, 128, 128)
		for i := 0; i < len(dst.Pix); i += 4 {
			if dst.Pix[i] != 128 || dst.Pix[i+3] != 255 {
				t.Fatalf("pixel %d = %v", i/4, dst.Pix[i:i+4])
			}
		}
	})
	t.Run("halves keep their colours and the mean is kept", func(t *testing.T) {
		src := image.NewRGBA(image.Rect(0, 0, 200, 100))
		for y := 0; y < 100; y++ {
			for x := 0; x < 200; x++ {
				if x < 100 {
					src.SetRGBA(x, y, color.RGBA{255, 0, 0, 255})
				} else {
					src.SetRGBA(x, y, color.RGBA{0, 0, 255, 255})
				}
			}
		}
		dst := scale(src, 128, 64)
		if got := dst.RGBAAt(0, 0); got != (color.RGBA{255, 0, 0, 255}) {
			t.Errorf("left = %v", got)
		}
		if got := dst.RGBAAt(127, 63); got != (color.RGBA{0, 0, 255, 255}) {
			t.Errorf("right = %v", got)
		}
		var red, blue float64
		for i := 0; i < len(dst.Pix); i += 4 {
			red += float64(dst.Pix[i])
			blue += float64(dst.Pix[i+2])
		}
		n := float64(128 * 64)
		if red/n < 127 || red/n > 128 || blue/n < 127 || blue/n > 128 {
			t.Errorf("mean red %.2f blue %.2f, want 127.5 each", red/n, blue/n)
		}
	})
	t.Run("transparency does not bleed", func(t *testing.T) {
		src := image.NewNRGBA(image.Rect(0, 0, 2, 1))
		src.SetNRGBA(0, 0, color.NRGBA{255, 255, 255, 255})
		src.SetNRGBA(1, 0, color.NRGBA{0, 0, 0, 0})
		got := color.NRGBAModel.Convert(scale(src, 1, 1).At(0, 0)).(color.NRGBA)
		if got.R != 255 || got.A != 128 {
			t.Errorf("white over transparent = %v, want white at half alpha", got)
		}
	})
}

func storageEvent(typ, bucket, key string) *plugins.Event {
	data, _ := json.Marshal(map[string]any{
		"eventName": "ObjectCreated:Put",
		"s3":        map[string]any{"bucket": map[string]any{"name": bucket}, "object": map[string]any{"key": key, "size": 1}},
	})
	return &plugins.Event{ID: plugins.NewID(), Source: "test", Type: typ, DataContentType: "application/json", Data: data}
}

func writeImage(t *testing.T, path string, jpg bool) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 300, 200))
	for y := 0; y < 200; y++ {
		for x := 0; x < 300; x++ {
			img.SetRGBA(x, y, color.RGBA{uint8(x), uint8(y), 100, 255})
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if jpg {
		err = jpeg.Encode(f, img, nil)
	} else {
		err = png.Encode(f, img)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestHandle(t *testing.T) {
	root, out := t.TempDir(), t.TempDir()
	ctx := plugins.WithFunction(context.Background(), "thumbs", map[string]string{"OBJECT_ROOT": root, "THUMB_DIR": out, "THUMB_SIZE": "64"})
	writeImage(t, filepath.Join(root, "photos", "cats", "tom 1.png"), false)
	writeImage(t, filepath.Join(root, "photos", "dog.jpg"), true)

	res, err := Handle(ctx, storageEvent(plugins.TypeStorageCreated, "photos", "cats/tom+1.png"))
	if err != nil {
		t.Fatal(err)
	}
	var a answer
	if err := json.Unmarshal(res, &a); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(out, "photos", "cats", "tom 1.png.thumb.png")
	if a.Key != "cats/tom 1.png" || a.Source.Width != 300 || a.Source.Height != 200 || a.Source.Format != "png" ||
		a.Thumbnail.Path != want || a.Thumbnail.Width != 64 || a.Thumbnail.Height != 43 {
		t.Errorf("answer %s", res)
	}
	f, err := os.Open(want)
	if err != nil {
		t.Fatal(err)
	}
	img, format, err := image.Decode(f)
	f.Close()
	if err != nil || format != "png" || img.Bounds().Dx() != 64 || img.Bounds().Dy() != 43 {
		t.Fatalf("thumbnail: %v %s %v", err, format, img.Bounds())
	}

	res, err = Handle(ctx, storageEvent(plugins.TypeStorageCreated, "photos", "dog.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(res, &a); err != nil || a.Thumbnail.Format != "jpeg" || filepath.Ext(a.Thumbnail.Path) != ".jpg" {
		t.Errorf("jpeg answer %s", res)
	}

	if _, err := Handle(ctx, storageEvent(plugins.TypeStorageCreated, "photos", "missing.png")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing object: %v", err)
	}
	for _, key := range []string{"../secret", "a/../../x", ""} {
		if _, err := Handle(ctx, storageEvent(plugins.TypeStorageCreated, "photos", key)); err == nil {
			t.Errorf("key %q was accepted", key)
		}
	}
	if _, err := Handle(ctx, &plugins.Event{ID: "x", Type: plugins.TypeInvoke, Data: []byte(`{"s3":{"bucket":{"name":"photos"},"object":{"key":"dog.jpg"}}}`)}); err == nil {
		t.Error("a non-storage event was accepted")
	}

	res, err = Handle(ctx, storageEvent(plugins.TypeStorageRemoved, "photos", "cats/tom+1.png"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(want); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("thumbnail left after removal (%s): %v", res, err)
	}
}
