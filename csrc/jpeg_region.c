/*
 * JPEG decoding through the system libjpeg-turbo (libjpeg API), for what the Rust decoders lack:
 * decoding only a window of the image (jpeg_skip_scanlines, jpeg_crop_scanline, stopping after the
 * window's last row), reduced-size DCT decoding (scale_denom 2, 4, 8), and lossless re-encoding
 * with restart markers (jpeg_read_coefficients / jpeg_write_coefficients).
 * libjpeg reports errors by longjmp; the jump stays inside this file and becomes a return code
 * with the message. Corrupt-data warnings are errors too, except extraneous bytes between markers,
 * which other decoders also accept.
 */
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

/* Messages are at most JMSG_LENGTH_MAX bytes; the caller passes a buffer of AL_MSG_LEN. */
#define AL_MSG_LEN 256

struct al_err {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char *msg;
};

static void al_error_exit(j_common_ptr c) {
    struct al_err *e = (struct al_err *)c->err;
    char buf[JMSG_LENGTH_MAX];
    (*c->err->format_message)(c, buf);
    snprintf(e->msg, AL_MSG_LEN, "%s", buf);
    longjmp(e->jump, 1);
}

static void al_emit_message(j_common_ptr c, int level) {
    if (level < 0) {
        if (c->err->msg_code == JWRN_EXTRANEOUS_DATA) {
            c->err->num_warnings++;
            return;
        }
        al_error_exit(c);
    }
}

static void al_init(struct jpeg_decompress_struct *c, struct al_err *e, char *msg) {
    c->err = jpeg_std_error(&e->pub);
    e->pub.error_exit = al_error_exit;
    e->pub.emit_message = al_emit_message;
    e->msg = msg;
    msg[0] = 0;
}

/* Header only: size, whether libjpeg can convert the colour space to RGB (not for CMYK/YCCK),
 * and whether the image is progressive. Returns 0, or -1 with `msg` set. */
int al_jpeg_info(const unsigned char *data, unsigned long len, unsigned *width, unsigned *height,
                 int *rgb_ok, int *progressive, char *msg) {
    struct jpeg_decompress_struct c;
    struct al_err e;
    al_init(&c, &e, msg);
    if (setjmp(e.jump)) {
        jpeg_destroy_decompress(&c);
        return -1;
    }
    jpeg_create_decompress(&c);
    jpeg_mem_src(&c, data, len);
    jpeg_read_header(&c, TRUE);
    *width = c.image_width;
    *height = c.image_height;
    *rgb_ok = c.jpeg_color_space == JCS_GRAYSCALE || c.jpeg_color_space == JCS_YCbCr ||
              c.jpeg_color_space == JCS_RGB;
    *progressive = c.progressive_mode;
    jpeg_destroy_decompress(&c);
    return 0;
}

/* The work of al_jpeg_decode, after its setjmp (so that no local of that frame is modified
 * between setjmp and longjmp). */
static int al_decode_run(struct jpeg_decompress_struct *c, const unsigned char *data,
                         unsigned long len, unsigned scale_denom, unsigned x, unsigned y,
                         unsigned w, unsigned h, unsigned char *out, size_t cap, unsigned *out_x,
                         unsigned *out_w, char *msg) {
    jpeg_create_decompress(c);
    jpeg_mem_src(c, data, len);
    jpeg_read_header(c, TRUE);
    c->out_color_space = JCS_RGB;
    c->scale_num = 1;
    c->scale_denom = scale_denom;
    jpeg_start_decompress(c);
    if (w == 0) {
        x = 0;
        y = 0;
        w = c->output_width;
        h = c->output_height;
    }
    if (w == 0 || h == 0 || x + w > c->output_width || y + h > c->output_height) {
        snprintf(msg, AL_MSG_LEN, "window %ux%u at (%u, %u) outside the %ux%u image", w, h, x, y,
                 c->output_width, c->output_height);
        return -1;
    }
    JDIMENSION cx = x, cw = w;
    if (cw < c->output_width) jpeg_crop_scanline(c, &cx, &cw);
    size_t stride = (size_t)cw * 3;
    if (stride * h > cap) {
        snprintf(msg, AL_MSG_LEN, "output buffer too small");
        return -1;
    }
    if (y > 0) jpeg_skip_scanlines(c, y);
    while (c->output_scanline < y + h) {
        JSAMPROW rows[16];
        JDIMENSION n = y + h - c->output_scanline;
        if (n > 16) n = 16;
        for (JDIMENSION i = 0; i < n; i++) rows[i] = out + (c->output_scanline - y + i) * stride;
        jpeg_read_scanlines(c, rows, n);
    }
    /* Stopping early: abort instead of reading the rest of the data. */
    if (c->output_scanline < c->output_height)
        jpeg_abort_decompress(c);
    else
        jpeg_finish_decompress(c);
    *out_x = cx;
    *out_w = cw;
    return 0;
}

/* Decodes rows y..y+h and at least columns x..x+w of the image scaled by 1/scale_denom, as RGB8
 * into `out` (capacity `cap` bytes). The left edge moves down to an iMCU boundary: the first
 * column and the width actually written are returned in *out_x and *out_w (row stride 3 * out_w).
 * w == 0 means the whole image. Returns 0, or -1 with `msg` set. */
int al_jpeg_decode(const unsigned char *data, unsigned long len, unsigned scale_denom, unsigned x,
                   unsigned y, unsigned w, unsigned h, unsigned char *out, size_t cap,
                   unsigned *out_x, unsigned *out_w, char *msg) {
    struct jpeg_decompress_struct c;
    struct al_err e;
    al_init(&c, &e, msg);
    int rc = -1;
    if (setjmp(e.jump) == 0)
        rc = al_decode_run(&c, data, len, scale_denom, x, y, w, h, out, cap, out_x, out_w, msg);
    jpeg_destroy_decompress(&c);
    return rc;
}

/* The work of al_jpeg_add_restarts, after its setjmp. */
static void al_restarts_run(struct jpeg_decompress_struct *d, struct jpeg_compress_struct *c,
                            const unsigned char *data, unsigned long len, unsigned interval,
                            unsigned char **out, unsigned long *out_len) {
    jpeg_create_decompress(d);
    jpeg_mem_src(d, data, len);
    jpeg_save_markers(d, JPEG_COM, 0xFFFF);
    for (int m = 0; m < 16; m++) jpeg_save_markers(d, JPEG_APP0 + m, 0xFFFF);
    jpeg_read_header(d, TRUE);
    jvirt_barray_ptr *coefs = jpeg_read_coefficients(d);
    jpeg_create_compress(c);
    jpeg_copy_critical_parameters(d, c);
    /* One sequential scan whatever the library's defaults (some default to progressive). */
    c->scan_info = NULL;
    c->num_scans = 0;
    c->optimize_coding = TRUE;
    c->restart_interval = interval;
    jpeg_mem_dest(c, out, out_len);
    jpeg_write_coefficients(c, coefs);
    /* The source's APPn and COM markers, except the JFIF and Adobe headers the encoder writes. */
    for (jpeg_saved_marker_ptr m = d->marker_list; m != NULL; m = m->next) {
        if (c->write_JFIF_header && m->marker == JPEG_APP0 && m->data_length >= 5 &&
            memcmp(m->data, "JFIF", 5) == 0)
            continue;
        if (c->write_Adobe_marker && m->marker == JPEG_APP0 + 14 && m->data_length >= 5 &&
            memcmp(m->data, "Adobe", 5) == 0)
            continue;
        jpeg_write_marker(c, m->marker, m->data, m->data_length);
    }
    jpeg_finish_compress(c);
    jpeg_finish_decompress(d);
}

/* Re-encodes a JPEG losslessly (the same DCT coefficients, so the same pixels) as one baseline
 * scan with a restart marker every `interval` MCUs. On success returns 0 and *out (free with
 * al_free) holds *out_len bytes; otherwise -1 with `msg` set. */
int al_jpeg_add_restarts(const unsigned char *data, unsigned long len, unsigned interval,
                         unsigned char **out, unsigned long *out_len, char *msg) {
    struct jpeg_decompress_struct d;
    struct jpeg_compress_struct c;
    struct al_err e;
    al_init(&d, &e, msg);
    /* Both objects exist (zeroed) before anything can fail, so both can be destroyed. */
    memset(&c, 0, sizeof c);
    c.err = &e.pub;
    *out = NULL;
    *out_len = 0;
    int rc = -1;
    if (setjmp(e.jump) == 0) {
        al_restarts_run(&d, &c, data, len, interval, out, out_len);
        rc = 0;
    }
    jpeg_destroy_compress(&c);
    jpeg_destroy_decompress(&d);
    if (rc != 0 && *out != NULL) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

void al_free(void *p) { free(p); }
