import { crashSuite } from "./crash.js"

crashSuite("1 of 2", 100, 1)
