"""models/files.py: every file object of an output, wherever it sits, in document order."""

from models.files import FileObject, file_objects
from models.media import file_urls


def test_file_objects_are_found_at_any_depth_in_document_order() -> None:
    output = {
        "images": [
            {"url": "https://cdn/a.png", "content_type": "image/png", "width": 8, "height": 8},
            {"url": "data:image/png;base64,AAAA", "content_type": "image/png"},
        ],
        "video": {
            "url": "https://cdn/v.mp4",
            "content_type": "video/mp4",
            "file_name": "v.mp4",
            "file_size": 1234,
        },
        "deeper": {"takes": [{"audio": {"url": "http://cdn/s.wav", "file_size": True}}]},
        "a/b~c": {"url": "https://cdn/odd.zip"},
        "not_files": [{"url": "ftp://cdn/x"}, {"url": 7}, {"href": "https://cdn/y"}],
        "seed": 4,
        "prompt": "https://cdn/not-an-object",
    }
    assert list(file_objects(output)) == [
        FileObject("/images/0", "https://cdn/a.png", "image/png"),
        FileObject("/images/1", "data:image/png;base64,AAAA", "image/png"),
        FileObject("/video", "https://cdn/v.mp4", "video/mp4", "v.mp4", 1234),
        FileObject("/deeper/takes/0/audio", "http://cdn/s.wav"),
        FileObject("/a~1b~0c", "https://cdn/odd.zip"),
    ]


def test_a_top_level_file_and_a_file_inside_a_file_count_once() -> None:
    output = {"url": "https://cdn/top.glb", "thumbnail": {"url": "https://cdn/t.png"}}
    assert [f.pointer for f in file_objects(output)] == [""]
    assert list(file_objects([{"url": "https://cdn/1"}, [{"url": "https://cdn/2"}]])) == [
        FileObject("/0", "https://cdn/1"),
        FileObject("/1/0", "https://cdn/2"),
    ]
    assert list(file_objects(None)) == []


def test_media_storage_copies_the_downloadable_ones_in_the_same_order() -> None:
    output = {
        "images": [{"url": "data:image/png;base64,AAAA"}, {"url": "https://cdn/a.png"}],
        "video": {"url": "https://cdn/v.mp4"},
    }
    assert list(file_urls(output)) == [
        ("/images/1", "https://cdn/a.png"),
        ("/video", "https://cdn/v.mp4"),
    ]
