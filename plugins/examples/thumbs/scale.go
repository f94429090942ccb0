package main

import (
	"image"
	"image/draw"
	"math"
)

// fit returns the size of a w×h image scaled to fit in size×size, keeping
// its aspect ratio; an image that fits already keeps its size.
func fit(w, h, size int) (int, int) {
	if w <= size && h <= size {
		return w, h
	}
	if w >= h {
		return size, max(1, int(math.Round(float64(h)*float64(size)/float64(w))))
	}
	return max(1, int(math.Round(float64(w)*float64(size)/float64(h)))), size
}

// span is the source pixels one destination pixel covers along one axis,
// and how much of each.
type span struct {
	first   int
	weights []float64 // of source pixels first, first+1, ...; they sum to 1
}

// spans returns, for each of dst pixels, the source pixels (of src) under
// it: a box filter by exact area coverage.
func spans(src, dst int) []span {
	out := make([]span, dst)
	scale := float64(src) / float64(dst)
	for i := range out {
		lo, hi := float64(i)*scale, float64(i+1)*scale
		first, last := int(lo), min(int(math.Ceil(hi)), src)
		s := span{first: first, weights: make([]float64, 0, last-first)}
		for j := first; j < last; j++ {
			cover := math.Min(hi, float64(j+1)) - math.Max(lo, float64(j))
			s.weights = append(s.weights, cover/scale)
		}
		out[i] = s
	}
	return out
}

// scale resizes img to w×h by area averaging, in premultiplied RGBA so
// that transparent pixels do not bleed their colour into their neighbours.
func scale(img image.Image, w, h int) *image.RGBA {
	b := img.Bounds()
	src, ok := img.(*image.RGBA)
	if !ok || src.Bounds().Min != (image.Point{}) {
		src = image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		draw.Draw(src, src.Bounds(), img, b.Min, draw.Src)
	}
	sw, sh := src.Bounds().Dx(), src.Bounds().Dy()
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	if sw == w && sh == h {
		copy(dst.Pix, src.Pix)
		return dst
	}
	xs, ys := spans(sw, w), spans(sh, h)
	// Horizontal pass into rows of floats, then vertical.
	tmp := make([]float64, sh*w*4)
	for y := 0; y < sh; y++ {
		row := src.Pix[y*src.Stride:]
		for x, s := range xs {
			var acc [4]float64
			for k, wt := range s.weights {
				p := row[(s.first+k)*4:]
				acc[0] += wt * float64(p[0])
				acc[1] += wt * float64(p[1])
				acc[2] += wt * float64(p[2])
				acc[3] += wt * float64(p[3])
			}
			copy(tmp[(y*w+x)*4:], acc[:])
		}
	}
	for y, s := range ys {
		for x := 0; x < w; x++ {
			var acc [4]float64
			for k, wt := range s.weights {
				p := tmp[((s.first+k)*w+x)*4:]
				acc[0] += wt * p[0]
				acc[1] += wt * p[1]
				acc[2] += wt * p[2]
				acc[3] += wt * p[3]
			}
			d := dst.Pix[y*dst.Stride+x*4:]
			for c := range acc {
				d[c] = uint8(min(255, math.Round(acc[c])))
			}
		}
	}
	return dst
}
