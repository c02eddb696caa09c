/*
 * jpeg-check: proves that a JPEG's compressed data decodes in full, with libjpeg-turbo built for WebAssembly.
 *
 * Every entropy-coded block is read (the work of a decode that cannot be skipped), but no image is made: a sequential
 * JPEG is decoded at 1/8 scale (each block's DC value only, so no inverse DCT to speak of), a progressive one has its
 * coefficients read. Any libjpeg warning but "extraneous bytes before marker" fails the check: a bad Huffman code, a
 * restart marker out of place, or data that ends early (libjpeg would fill the rest with grey and carry on).
 *
 * libjpeg reports fatal errors through error_exit, which must not return. Without setjmp in WebAssembly, it calls the
 * imported `fail`, which throws a JavaScript exception; the caller then discards this instance (its stack pointer and
 * heap are left as the error found them) and makes a new one. Errors come only from bad images, so this is rare.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "jpeglib.h"
#include "jerror.h"

__attribute__((import_module("env"), import_name("fail"))) void js_fail(void);

#define EXPORT(name) __attribute__((export_name(name)))

static char message[JMSG_LENGTH_MAX];
static int warnings;

/* What the header said, for the caller: see the field list in workers/check-jpeg.ts. */
static int32_t info[8];

static void on_error(j_common_ptr cinfo) {
  (*cinfo->err->format_message)(cinfo, message);
  js_fail();
}

static void on_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return; /* trace messages */
  /* Bytes between the entropy-coded data and the next marker: the data itself decoded whole. */
  if (cinfo->err->msg_code == JWRN_EXTRANEOUS_DATA) return;
  if (warnings++ == 0) (*cinfo->err->format_message)(cinfo, message);
}

static void on_output(j_common_ptr cinfo) { (void)cinfo; }

EXPORT("message") char *get_message(void) { return message; }
EXPORT("info") int32_t *get_info(void) { return info; }
EXPORT("alloc") void *alloc(size_t size) { return malloc(size); }
EXPORT("release") void release(void *pointer) { free(pointer); }

/* 0: every block decoded; 1: libjpeg warned (message() says what). A fatal error throws through `fail`. */
EXPORT("check") int check(const unsigned char *data, unsigned long size) {
  struct jpeg_decompress_struct cinfo;
  struct jpeg_error_mgr jerr;
  warnings = 0;
  message[0] = 0;
  cinfo.err = jpeg_std_error(&jerr);
  jerr.error_exit = on_error;
  jerr.emit_message = on_message;
  jerr.output_message = on_output;
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, size);
  jpeg_read_header(&cinfo, TRUE);
  info[0] = (int32_t)cinfo.image_width;
  info[1] = (int32_t)cinfo.image_height;
  info[2] = cinfo.num_components;
  info[3] = cinfo.jpeg_color_space;
  info[4] = cinfo.progressive_mode;
  info[5] = cinfo.data_precision;
  info[6] = cinfo.saw_Adobe_marker ? cinfo.Adobe_transform : -1;
  info[7] = cinfo.arith_code;
  if (cinfo.progressive_mode) {
    /* Progressive scans refine the whole image: its coefficients must be kept until the last scan. */
    jpeg_read_coefficients(&cinfo);
  } else {
    JSAMPROW row;
    cinfo.scale_num = 1;
    cinfo.scale_denom = 8;
    jpeg_start_decompress(&cinfo);
    row = (JSAMPROW)malloc((size_t)cinfo.output_width * (size_t)cinfo.output_components);
    if (row == NULL) ERREXIT1(&cinfo, JERR_OUT_OF_MEMORY, 0);
    while (cinfo.output_scanline < cinfo.output_height) jpeg_read_scanlines(&cinfo, &row, 1);
    free(row);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return warnings > 0 ? 1 : 0;
}
