"""Media intake for /send (issue 24): the bytes of an image, video, audio, document or sticker, from base64, a
URL or a multipart part, checked (size, type from the bytes) and stored durably before the request is answered.

One job per module: ``kinds`` (the kinds, their mimetypes and default limits), ``config`` (the WA_MEDIA_*
settings as one object), ``errors`` (the API errors), ``store`` (the content-addressed store on disk),
``sniff`` (the type from the first bytes), ``fetch`` (a guarded download), ``intake`` (the three sources into
a ``StoredMedia``). Beside ``store`` in the layers: it imports the shared top-level modules, never http/runtime.
"""
