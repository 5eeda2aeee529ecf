package bench

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
)

// Colours of the plot's series.
var (
	signetColor = color.RGBA{200, 30, 30, 255}
	floorColor  = color.RGBA{30, 80, 200, 255}
	gridColor   = color.RGBA{225, 225, 225, 255}
	axisColor   = color.RGBA{60, 60, 60, 255}
)

// plotLatency draws p50 (thin) and p99 (thick) latency in ms (y, linear
// from 0) against concurrency (x, one step per load level) for signet (red)
// and the floor (blue), with numeric tick labels, as a PNG.
func plotLatency(sw sweep) ([]byte, error) {
	const w, h, left, right, top, bottom = 720, 420, 60, 20, 20, 40
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	fill(img, img.Bounds(), color.RGBA{255, 255, 255, 255})
	n := len(sw.Signet)
	if n == 0 {
		return nil, fmt.Errorf("no load levels measured")
	}
	maxY := 0.0
	for _, s := range [][]sweepPoint{sw.Signet, sw.Floor} {
		for _, p := range s {
			maxY = math.Max(maxY, p.P99)
		}
	}
	step := niceStep(maxY / 5)
	maxY = math.Ceil(maxY/step) * step
	x := func(i int) int {
		if n == 1 {
			return (left + w - right) / 2
		}
		return left + i*(w-left-right)/(n-1)
	}
	y := func(v float64) int { return h - bottom - int(v/maxY*float64(h-top-bottom)) }
	for v := 0.0; v <= maxY+step/2; v += step {
		line(img, left, y(v), w-right, y(v), gridColor, 1)
		text(img, 4, y(v)-3, trimFloat(v), axisColor)
	}
	for i, p := range sw.Signet {
		line(img, x(i), top, x(i), h-bottom, gridColor, 1)
		text(img, x(i)-4, h-bottom+8, fmt.Sprint(p.Concurrency), axisColor)
	}
	line(img, left, top, left, h-bottom, axisColor, 1)
	line(img, left, h-bottom, w-right, h-bottom, axisColor, 1)
	for _, s := range []struct {
		pts []sweepPoint
		c   color.RGBA
	}{{sw.Floor, floorColor}, {sw.Signet, signetColor}} {
		for i := range s.pts {
			if i > 0 {
				line(img, x(i-1), y(s.pts[i-1].P50), x(i), y(s.pts[i].P50), s.c, 1)
				line(img, x(i-1), y(s.pts[i-1].P99), x(i), y(s.pts[i].P99), s.c, 3)
			}
			fill(img, image.Rect(x(i)-3, y(s.pts[i].P99)-3, x(i)+4, y(s.pts[i].P99)+4), s.c)
			fill(img, image.Rect(x(i)-2, y(s.pts[i].P50)-2, x(i)+3, y(s.pts[i].P50)+3), s.c)
		}
	}
	var buf bytes.Buffer
	err := png.Encode(&buf, img)
	return buf.Bytes(), err
}

func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3g", v)
	return s
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for py := r.Min.Y; py < r.Max.Y; py++ {
		for px := r.Min.X; px < r.Max.X; px++ {
			img.SetRGBA(px, py, c)
		}
	}
}

// line draws a line of the given width (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA, width int) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		fill(img, image.Rect(x0-width/2, y0-width/2, x0-width/2+width, y0-width/2+width), c)
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}

// glyphs is a 3×5 pixel font for tick labels: each row is 3 bits.
var glyphs = map[rune][5]uint8{
	'0': {7, 5, 5, 5, 7}, '1': {2, 6, 2, 2, 7}, '2': {7, 1, 7, 4, 7}, '3': {7, 1, 7, 1, 7}, '4': {5, 5, 7, 1, 1},
	'5': {7, 4, 7, 1, 7}, '6': {7, 4, 7, 5, 7}, '7': {7, 1, 1, 1, 1}, '8': {7, 5, 7, 5, 7}, '9': {7, 5, 7, 1, 7},
	'.': {0, 0, 0, 0, 2}, 'e': {0, 7, 7, 4, 7}, '+': {0, 2, 7, 2, 0}, '-': {0, 0, 7, 0, 0},
}

// text draws s at (x, y), each font pixel 2×2.
func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	for _, r := range s {
		g := glyphs[r]
		for row, bits := range g {
			for col := range 3 {
				if bits&(4>>col) != 0 {
					fill(img, image.Rect(x+col*2, y+row*2, x+col*2+2, y+row*2+2), c)
				}
			}
		}
		x += 8
	}
}
