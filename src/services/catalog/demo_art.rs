//! Pictures for demo products: a gradient background, one bold shape and a letter on a
//! badge, chosen and coloured by an index, so that neighbouring products look different
//! and a product's picture carries its initial. Pure drawing; never touches storage.

use image::{ImageFormat, Rgb, RgbImage};

const PALETTES: [([u8; 3], [u8; 3], [u8; 3]); 6] = [
    ([250, 225, 200], [240, 160, 120], [120, 40, 30]),
    ([210, 235, 250], [120, 170, 230], [20, 50, 110]),
    ([220, 245, 215], [130, 200, 140], [30, 90, 50]),
    ([245, 230, 250], [190, 140, 220], [80, 30, 110]),
    ([250, 245, 205], [230, 200, 90], [110, 80, 10]),
    ([235, 235, 235], [160, 160, 170], [40, 40, 50]),
];

#[derive(Clone, Copy)]
enum Shape {
    Circle,
    Square,
    Triangle,
    Diamond,
    Stripes,
    Rings,
    Checker,
    Cross,
}

const SHAPES: [Shape; 8] = [
    Shape::Circle,
    Shape::Square,
    Shape::Triangle,
    Shape::Diamond,
    Shape::Stripes,
    Shape::Rings,
    Shape::Checker,
    Shape::Cross,
];

/// A 5×7 bitmap font for A–Z: seven rows of five bits, most significant bit left.
const GLYPHS: [[u8; 7]; 26] = [
    [
        0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001,
    ], // A
    [
        0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110,
    ], // B
    [
        0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110,
    ], // C
    [
        0b11110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11110,
    ], // D
    [
        0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111,
    ], // E
    [
        0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000,
    ], // F
    [
        0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111,
    ], // G
    [
        0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001,
    ], // H
    [
        0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110,
    ], // I
    [
        0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100,
    ], // J
    [
        0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001,
    ], // K
    [
        0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111,
    ], // L
    [
        0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001,
    ], // M
    [
        0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001,
    ], // N
    [
        0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110,
    ], // O
    [
        0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000,
    ], // P
    [
        0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101,
    ], // Q
    [
        0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001,
    ], // R
    [
        0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110,
    ], // S
    [
        0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100,
    ], // T
    [
        0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110,
    ], // U
    [
        0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100,
    ], // V
    [
        0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010,
    ], // W
    [
        0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001,
    ], // X
    [
        0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100, 0b00100,
    ], // Y
    [
        0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111,
    ], // Z
];

/// The letter the `index`-th picture carries: pictures cycle through A–Z.
pub fn letter(index: usize) -> u8 {
    b'A' + (index % GLYPHS.len()) as u8
}

/// Whether the point (fx, fy) of the unit square falls on `index`'s letter, drawn in
/// the middle 35 % of the picture.
fn on_glyph(index: usize, fx: f32, fy: f32) -> bool {
    let glyph = &GLYPHS[index % GLYPHS.len()];
    let cell = 0.35 / 7.0;
    let (col, row) = ((fx - (0.5 - 2.5 * cell)) / cell, (fy - 0.325) / cell);
    if !(0.0..5.0).contains(&col) || !(0.0..7.0).contains(&row) {
        return false;
    }
    glyph[row as usize] & (0b10000 >> col as u32) != 0
}

fn mix(a: [u8; 3], b: [u8; 3], t: f32) -> Rgb<u8> {
    let c = |i: usize| (a[i] as f32 + (b[i] as f32 - a[i] as f32) * t).round() as u8;
    Rgb([c(0), c(1), c(2)])
}

/// The `index`-th picture as PNG bytes, `size` pixels square.
pub fn draw(index: usize, size: u32) -> Vec<u8> {
    let (light, mid, dark) = PALETTES[index % PALETTES.len()];
    let shape = SHAPES[(index / PALETTES.len()) % SHAPES.len()];
    // Past 48 pictures the shape shrinks a little, so every index stays distinct.
    let scale = 0.36 - 0.02 * ((index / (PALETTES.len() * SHAPES.len())) % 8) as f32;
    let s = size as f32;
    let img = RgbImage::from_fn(size, size, |x, y| {
        let (fx, fy) = (x as f32 / s, y as f32 / s);
        let (dx, dy) = (fx - 0.5, fy - 0.5);
        let r = (dx * dx + dy * dy).sqrt();
        let inside = match shape {
            Shape::Circle => r < scale,
            Shape::Square => dx.abs() < scale * 0.85 && dy.abs() < scale * 0.85,
            Shape::Triangle => dy < scale * 0.8 && dy > -scale && dx.abs() < (dy + scale) * 0.6,
            Shape::Diamond => dx.abs() + dy.abs() < scale * 1.2,
            Shape::Stripes => ((fx + fy) * 10.0) as i32 % 2 == 0 && r < scale * 1.3,
            Shape::Rings => ((r / scale) * 4.0) as i32 % 2 == 0 && r < scale * 1.2,
            Shape::Checker => ((fx * 8.0) as i32 + (fy * 8.0) as i32) % 2 == 0 && r < scale * 1.3,
            Shape::Cross => (dx.abs() < scale * 0.3 || dy.abs() < scale * 0.3) && r < scale * 1.1,
        };
        if on_glyph(index, fx, fy) {
            Rgb(light)
        } else if r < 0.26 {
            Rgb(dark)
        } else if inside {
            mix(mid, dark, fy)
        } else {
            mix(light, mid, fy * 0.5)
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    // Writing a PNG into memory cannot fail for a valid RGB image.
    let _ = image::DynamicImage::ImageRgb8(img).write_to(&mut out, ImageFormat::Png);
    out.into_inner()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pictures_are_distinct_and_decodable() {
        let a = draw(0, 64);
        let b = draw(1, 64);
        let c = draw(6, 64);
        assert!(a != b && a != c && b != c);
        assert_eq!(draw(0, 64), a, "deterministic");
        let img = image::load_from_memory(&a).unwrap();
        assert_eq!((img.width(), img.height()), (64, 64));
    }

    #[test]
    fn pictures_carry_their_letter() {
        assert_eq!(letter(0), b'A');
        assert_eq!(letter(27), b'B');
        // The middle of the top row of an "A" is lit; its top corners are not.
        let cell = 0.35 / 7.0;
        let top = 0.325 + cell / 2.0;
        assert!(on_glyph(0, 0.5, top));
        assert!(!on_glyph(0, 0.5 - 2.0 * cell, top));
        assert!(!on_glyph(0, 0.05, 0.05), "outside the glyph box");
    }
}
