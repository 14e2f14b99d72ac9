"""The ceiling of our stack: a falcon app on waitress that answers every GET with a constant body.

    python bench/ceiling_app.py --port 9200 [--threads 8]
"""
import argparse

import falcon
import waitress

BODY = ('<?xml version="1.0"?>\n<updates>\n    <update type="minor" displayVersion="67.0" appVersion="67.0" '
        'platformVersion="67.0" buildID="20190513195729">\n        <patch type="complete" '
        'URL="http://download.mozilla.org/?product=firefox-67.0-complete&amp;os=win&amp;lang=en-US" '
        'hashFunction="sha512" hashValue="00" size="50660923"/>\n    </update>\n</updates>').encode()


def constant(req, resp, **_):
    resp.content_type = "text/xml; charset=utf-8"
    resp.data = BODY


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    app = falcon.App()
    app.add_sink(constant, r"/")
    waitress.serve(app, host="127.0.0.1", port=args.port, threads=args.threads, _quiet=True)


if __name__ == "__main__":
    main()
